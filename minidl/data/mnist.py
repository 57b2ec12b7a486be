"""MNIST in its official idx form.

An idx file is a big-endian header, then raw uint8 data: magic number 2051,
count, rows, columns for images; magic 2049 and count for labels.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .dataset import ArrayDataset
from .download import DownloadError, default_cache_dir, download

MIRRORS = ["https://ossci-datasets.s3.amazonaws.com/mnist/", "https://storage.googleapis.com/cvdf-datasets/mnist/"]
FILES = {
    "train-images-idx3-ubyte": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte": "ec29112dd5afa0611ce80d1b7f02629c",
}
IMAGE_MAGIC, LABEL_MAGIC = 2051, 2049


def _open(path):
    return gzip.open(path, "rb") if path.endswith(".gz") else open(path, "rb")


def read_idx_images(path) -> np.ndarray:
    """uint8 (N, rows, cols, 1) from an idx3 file (optionally gzipped)."""
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 16:
        raise ValueError(f"read_idx_images: {path} is too short for an idx image header")
    magic, n, rows, cols = struct.unpack(">IIII", raw[:16])
    if magic != IMAGE_MAGIC:
        raise ValueError(f"read_idx_images: {path} has magic number {magic}, expected {IMAGE_MAGIC} (idx images)")
    if len(raw) - 16 != n * rows * cols:
        raise ValueError(f"read_idx_images: {path} should hold {n}x{rows}x{cols} = {n * rows * cols} bytes of pixels, "
                         f"has {len(raw) - 16}")
    return np.frombuffer(raw, dtype=np.uint8, offset=16).reshape(n, rows, cols, 1).copy()


def read_idx_labels(path) -> np.ndarray:
    with _open(path) as f:
        raw = f.read()
    if len(raw) < 8:
        raise ValueError(f"read_idx_labels: {path} is too short for an idx label header")
    magic, n = struct.unpack(">II", raw[:8])
    if magic != LABEL_MAGIC:
        raise ValueError(f"read_idx_labels: {path} has magic number {magic}, expected {LABEL_MAGIC} (idx labels)")
    if len(raw) - 8 != n:
        raise ValueError(f"read_idx_labels: {path} should hold {n} labels, has {len(raw) - 8}")
    return np.frombuffer(raw, dtype=np.uint8, offset=8).astype(np.int64)


def _locate(root, name):
    for candidate in (name, name + ".gz"):
        path = os.path.join(root, candidate)
        if os.path.exists(path):
            return path
    return None


def looks_like_mnist(path) -> bool:
    return os.path.isdir(path) and all(_locate(path, name) for name in FILES)


def load_mnist(root=None, download_missing: bool = True):
    """(train, test) ArrayDatasets of MNIST: 60,000 and 10,000 images (28, 28, 1), classes '0'..'9'."""
    root = default_cache_dir() if root is None else os.fspath(root)
    paths = {}
    for name, md5 in FILES.items():
        path = _locate(root, name)
        if path is None:
            if not download_missing:
                raise FileNotFoundError(f"load_mnist: {name}(.gz) not found in {root}")
            errors = []
            for mirror in MIRRORS:
                try:
                    path = download(mirror + name + ".gz", os.path.join(root, name + ".gz"), md5)
                    break
                except DownloadError as exc:
                    errors.append(str(exc))
            if path is None:
                raise DownloadError(" | ".join(errors))
        paths[name] = path
    classes = [str(d) for d in range(10)]
    train = ArrayDataset(read_idx_images(paths["train-images-idx3-ubyte"]), read_idx_labels(paths["train-labels-idx1-ubyte"]), classes)
    test = ArrayDataset(read_idx_images(paths["t10k-images-idx3-ubyte"]), read_idx_labels(paths["t10k-labels-idx1-ubyte"]), classes)
    return train, test


def write_idx(path, array: np.ndarray) -> None:
    """Write uint8 images (N, H, W[, 1]) or labels (N,) as an idx file (gzipped if path ends with .gz)."""
    array = np.asarray(array, dtype=np.uint8)
    if array.ndim == 1:
        header = struct.pack(">II", LABEL_MAGIC, len(array))
    else:
        header = struct.pack(">IIII", IMAGE_MAGIC, array.shape[0], array.shape[1], array.shape[2])
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(header + array.tobytes())
