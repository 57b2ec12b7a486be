"""MNIST from its official idx files.

MNIST holds 70,000 grayscale images of handwritten digits, 28x28 pixels:
60,000 for training and 10,000 for testing, in four files (usually gzipped):

    train-images-idx3-ubyte   train-labels-idx1-ubyte
    t10k-images-idx3-ubyte    t10k-labels-idx1-ubyte

The *idx* format is a tiny header followed by raw bytes. All header numbers
are 4-byte big-endian unsigned integers:

* a magic number 0x00000803 = 2051 for images (0x08: the values are unsigned
  bytes, 0x03: three dimensions), then the count N, the rows (28) and the
  columns (28), then N*28*28 pixel bytes, row by row;
* a magic number 0x00000801 = 2049 for labels (unsigned bytes, one
  dimension), then the count N, then N label bytes (0..9).

The magic number catches swapped or foreign files; the byte count catches
truncated ones. Both are checked, with errors that say what was expected.
"""
from __future__ import annotations

import gzip
import os
import struct

import numpy as np

from .dataset import ArrayDataset
from .download import DownloadError, default_cache_dir
from .download import download as download_file

MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
# the MD5 digests are those of the gzipped files
FILES = {
    "train_images": ("train-images-idx3-ubyte", "f68b3c2dcbeaaa9fbdd348bbdeb94873"),
    "train_labels": ("train-labels-idx1-ubyte", "d53e105ee54ea40749a09fcbcd1e9432"),
    "test_images": ("t10k-images-idx3-ubyte", "9fb629c4189551a2d022fa330f9573f3"),
    "test_labels": ("t10k-labels-idx1-ubyte", "ec29112dd5afa0611ce80d1b7f02629c"),
}
IMAGE_MAGIC = 2051   # 0x00000803
LABEL_MAGIC = 2049   # 0x00000801
GZIP_SIGNATURE = b"\x1f\x8b"
CLASSES = [str(digit) for digit in range(10)]


def _read_bytes(path) -> bytes:
    """The contents of ``path``, decompressed when it is gzipped (recognised by its first two bytes)."""
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == GZIP_SIGNATURE:
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as exc:
            raise ValueError(f"{path} looks gzipped but cannot be decompressed ({exc})") from None
    return raw


def _parse_idx(raw: bytes, path, expected_magic: int, function: str) -> tuple:
    """(dimensions, data bytes) of an idx file, checking its magic number and its length."""
    ndim = expected_magic & 0xFF
    header_length = 4 + 4 * ndim
    if len(raw) < header_length:
        raise ValueError(f"{function}: {path} has {len(raw)} bytes, too few for an idx header of "
                         f"{header_length} bytes")
    magic = struct.unpack(">I", raw[:4])[0]
    if magic != expected_magic:
        kind = {IMAGE_MAGIC: "idx images", LABEL_MAGIC: "idx labels"}
        raise ValueError(f"{function}: {path} has magic number {magic}, expected {expected_magic} "
                         f"({kind[expected_magic]}); is it the right file?")
    dims = struct.unpack(f">{ndim}I", raw[4:header_length])
    expected_bytes = int(np.prod(dims))
    if len(raw) - header_length != expected_bytes:
        raise ValueError(f"{function}: {path} should hold {' x '.join(map(str, dims))} = {expected_bytes} bytes "
                         f"after its header, but holds {len(raw) - header_length} (truncated or corrupted?)")
    return dims, raw[header_length:]


def read_idx_images(path) -> np.ndarray:
    """uint8 images (N, rows, cols, 1) from an idx3 file, gzipped or not."""
    path = os.fspath(path)
    (count, rows, cols), data = _parse_idx(_read_bytes(path), path, IMAGE_MAGIC, "read_idx_images")
    return np.frombuffer(data, dtype=np.uint8).reshape(count, rows, cols, 1).copy()


def read_idx_labels(path) -> np.ndarray:
    """int64 labels (N,) from an idx1 file, gzipped or not."""
    path = os.fspath(path)
    (count,), data = _parse_idx(_read_bytes(path), path, LABEL_MAGIC, "read_idx_labels")
    return np.frombuffer(data, dtype=np.uint8).astype(np.int64)


def write_idx(path, array) -> None:
    """Write uint8 images (N, H, W) or (N, H, W, 1), or labels (N,), as an idx file (gzipped if path ends in .gz)."""
    array = np.asarray(array)
    if array.ndim == 4 and array.shape[3] == 1:
        array = array[..., 0]
    if array.ndim not in (1, 3):
        raise ValueError(f"write_idx: expected labels (N,) or images (N, H, W[, 1]), got shape {array.shape}")
    if array.size and (array.min() < 0 or array.max() > 255):
        raise ValueError(f"write_idx: values must fit in a byte (0..255), got {array.min()}..{array.max()}")
    magic = LABEL_MAGIC if array.ndim == 1 else IMAGE_MAGIC
    header = struct.pack(f">I{array.ndim}I", magic, *array.shape)
    body = header + array.astype(np.uint8).tobytes()
    opener = gzip.open if os.fspath(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(body)


def _find_file(root: str, name: str):
    """``root/name`` or ``root/name.gz``, whichever exists, else None."""
    for candidate in (name, name + ".gz"):
        path = os.path.join(root, candidate)
        if os.path.isfile(path):
            return path
    return None


def looks_like_mnist(path) -> bool:
    """True when the folder ``path`` holds the four idx files (gzipped or not)."""
    path = os.fspath(path)
    return os.path.isdir(path) and all(_find_file(path, name) for name, _ in FILES.values())


def _download_from_mirrors(name: str, md5: str, root: str, progress: bool = True) -> str:
    """Download ``name``.gz from the first mirror that works; DownloadError listing every failure otherwise."""
    failures = []
    for mirror in MIRRORS:
        try:
            return download_file(mirror + name + ".gz", os.path.join(root, name + ".gz"), md5, progress=progress)
        except DownloadError as exc:
            failures.append(str(exc))
    raise DownloadError(f"load_mnist: every mirror failed for {name}.gz:\n  " + "\n  ".join(failures))


def load_mnist(root=None, download: bool = True, progress: bool = True) -> tuple:
    """(train, test) ArrayDatasets of MNIST: 60,000 and 10,000 uint8 images (28, 28, 1), classes '0'..'9'.

    root: a folder holding the four idx files (gzipped or not); None means the cache folder
          ($MINIDL_DATA or ~/.cache/minidl).
    download: fetch the missing files into ``root`` from the mirrors (MD5-checked).
    progress: show a progress bar while downloading.
    """
    root = default_cache_dir() if root is None else os.fspath(root)
    paths = {}
    for role, (name, md5) in FILES.items():
        path = _find_file(root, name)
        if path is None:
            if not download:
                raise FileNotFoundError(f"load_mnist: {name} (or {name}.gz) not found in {root}, and download=False")
            path = _download_from_mirrors(name, md5, root, progress)
        paths[role] = path

    def split(images_role, labels_role):
        images = read_idx_images(paths[images_role])
        labels = read_idx_labels(paths[labels_role])
        if len(images) != len(labels):
            raise ValueError(f"load_mnist: {paths[images_role]} holds {len(images)} images but "
                             f"{paths[labels_role]} holds {len(labels)} labels")
        return ArrayDataset(images, labels, CLASSES)

    return split("train_images", "train_labels"), split("test_images", "test_labels")
