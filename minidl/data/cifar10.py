"""CIFAR-10 in its official "python version" form.

The archive cifar-10-python.tar.gz holds pickled batches (data_batch_1..5 for
training, test_batch for testing, batches.meta for the class names). Each
batch has ``data``, a uint8 (10000, 3072) array whose rows are one 32x32
image as three planes, red then green then blue, and ``labels``.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np

from .dataset import ArrayDataset
from .download import default_cache_dir, download

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE = "cifar-10-python.tar.gz"
FOLDER = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """(N, 3072) rows of R, G, B planes -> uint8 (N, 32, 32, 3)."""
    return np.ascontiguousarray(np.asarray(rows, dtype=np.uint8).reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))


def _unpickle(raw: bytes) -> dict:
    return pickle.loads(raw, encoding="bytes")


def _find(root):
    """(kind, path) with kind 'tar' or 'dir' for a CIFAR-10 copy at or inside ``root``; (None, None) if absent."""
    root = os.fspath(root)
    if os.path.isfile(root) and tarfile.is_tarfile(root):
        return "tar", root
    for candidate in (os.path.join(root, FOLDER), root):
        if os.path.isfile(os.path.join(candidate, "batches.meta")):
            return "dir", candidate
    if os.path.isfile(os.path.join(root, ARCHIVE)):
        return "tar", os.path.join(root, ARCHIVE)
    return None, None


def looks_like_cifar10(path) -> bool:
    """True for the official archive, or a folder holding it or its extracted batches."""
    kind, found = _find(path)
    if kind != "tar":
        return kind == "dir"
    with tarfile.open(found) as tar:
        return any(name.endswith(f"{FOLDER}/batches.meta") for name in tar.getnames())


def _read_batches(kind, path) -> dict:
    wanted = TRAIN_BATCHES + ["test_batch", "batches.meta"]
    found = {}
    if kind == "dir":
        for name in wanted:
            file = os.path.join(path, name)
            if os.path.exists(file):
                with open(file, "rb") as f:
                    found[name] = _unpickle(f.read())
    else:
        with tarfile.open(path) as tar:
            for member in tar.getmembers():
                name = os.path.basename(member.name)
                if name in wanted and member.isfile():
                    found[name] = _unpickle(tar.extractfile(member).read())
    missing = [n for n in wanted if n not in found]
    if missing:
        raise ValueError(f"load_cifar10: {path} lacks {', '.join(missing)}; is it the official python version?")
    return found


def load_cifar10(root=None, download_missing: bool = True):
    """(train, test) ArrayDatasets of CIFAR-10: 50,000 and 10,000 images (32, 32, 3).

    ``root``: the archive, a folder with it or with cifar-10-batches-py/, or None for the cache folder
    ($MINIDL_DATA or ~/.cache/minidl), where the archive is downloaded (and its MD5 checked) if missing.
    """
    root = default_cache_dir() if root is None else os.fspath(root)
    kind, path = _find(root)
    if kind is None:
        if not download_missing:
            raise FileNotFoundError(f"load_cifar10: no CIFAR-10 copy in {root}")
        path, kind = download(URL, os.path.join(root, ARCHIVE), MD5), "tar"
    batches = _read_batches(kind, path)
    classes = [c.decode() if isinstance(c, bytes) else c for c in batches["batches.meta"][b"label_names"]]

    def join(names):
        images = np.concatenate([rows_to_images(batches[n][b"data"]) for n in names])
        labels = np.concatenate([np.asarray(batches[n][b"labels"], dtype=np.int64) for n in names])
        return ArrayDataset(images, labels, classes)
    return join(TRAIN_BATCHES), join(["test_batch"])


def write_cifar10_archive(path, train, test) -> None:
    """Write ArrayDatasets of 32x32 RGB images in the official format (for tests and conversions)."""
    def batch(ds, start, stop):
        rows = ds.images[start:stop].transpose(0, 3, 1, 2).reshape(stop - start, -1)
        return pickle.dumps({b"data": rows, b"labels": ds.labels[start:stop].tolist()})
    per = -(-len(train) // 5)
    files = {f"{FOLDER}/data_batch_{i + 1}": batch(train, i * per, min(len(train), (i + 1) * per)) for i in range(5)}
    files[f"{FOLDER}/test_batch"] = batch(test, 0, len(test))
    files[f"{FOLDER}/batches.meta"] = pickle.dumps({b"label_names": [c.encode() for c in train.classes]})
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
