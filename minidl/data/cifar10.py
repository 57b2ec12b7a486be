"""CIFAR-10 from its official "python version" archive.

CIFAR-10 holds 60,000 colour images of 32x32 pixels in 10 classes (airplane,
automobile, bird, cat, deer, dog, frog, horse, ship, truck): 50,000 for
training and 10,000 for testing. The official archive ``cifar-10-python.tar.gz``
(163 MB) contains a folder ``cifar-10-batches-py/`` with seven pickled files:

* ``data_batch_1`` ... ``data_batch_5``: the training set, 10,000 images each;
* ``test_batch``: the test set;
* ``batches.meta``: the class names, under the key ``b"label_names"``.

Each batch is a dict with bytes keys (it was pickled by Python 2):

* ``b"data"``:   uint8 array (10000, 3072); row i is image i stored as three
  *planes*: 1024 red values (32 rows of 32), then 1024 green, then 1024 blue;
* ``b"labels"``: a list of 10000 ints in [0, 9].

So a row reshaped to (3, 32, 32) is channels-first, and a transpose to
(32, 32, 3) gives minidl's channels-last image layout (:func:`rows_to_images`).

Unpickling an ordinary pickle can run code hidden in the file, so the batches are read by a restricted
unpickler (:mod:`minidl.data.safe_pickle`) that admits only the dicts, lists, bytes, ints and uint8 /
int64 arrays these files hold and refuses anything else; :func:`load_cifar10` also checks the MD5 of what
it downloads against the official one.
"""
from __future__ import annotations

import io
import os
import pickle
import tarfile

import numpy as np

from . import safe_pickle
from .dataset import ArrayDataset
from .download import default_cache_dir
from .download import download as download_file

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
IMAGE_SHAPE = (32, 32, 3)
ROW_LENGTH = 32 * 32 * 3   # 3072 values per image


def rows_to_images(rows: np.ndarray) -> np.ndarray:
    """Official rows (N, 3072) of R, G, B planes -> uint8 images (N, 32, 32, 3), channels-last.

    image[n, y, x, c] = rows[n, c * 1024 + y * 32 + x]
    """
    rows = np.asarray(rows, dtype=np.uint8)
    planes = rows.reshape(len(rows), 3, 32, 32)              # (N, C, H, W)
    return np.ascontiguousarray(planes.transpose(0, 2, 3, 1))  # (N, H, W, C)


def images_to_rows(images: np.ndarray) -> np.ndarray:
    """The inverse of :func:`rows_to_images`: uint8 images (N, 32, 32, 3) -> rows (N, 3072)."""
    images = np.asarray(images, dtype=np.uint8)
    if images.shape[1:] != IMAGE_SHAPE:
        raise ValueError(f"images_to_rows: expected images of shape (N, 32, 32, 3), got {images.shape}")
    return np.ascontiguousarray(images.transpose(0, 3, 1, 2)).reshape(len(images), ROW_LENGTH)


def _locate(root: str):
    """Find a CIFAR-10 copy at ``root``: ('archive', file), ('folder', dir) or (None, None).

    ``root`` may be the archive itself, the extracted cifar-10-batches-py/ folder, or a folder
    holding either of them.
    """
    if os.path.isfile(root):
        return "archive", root
    if os.path.isfile(os.path.join(root, META)):
        return "folder", root
    if os.path.isfile(os.path.join(root, FOLDER_NAME, META)):
        return "folder", os.path.join(root, FOLDER_NAME)
    if os.path.isfile(os.path.join(root, ARCHIVE_NAME)):
        return "archive", os.path.join(root, ARCHIVE_NAME)
    return None, None


def looks_like_cifar10(path) -> bool:
    """True when ``path`` is (or holds) the official python-version archive or its extracted folder.

    For an archive only the first few members are read: the official one starts with its folder
    and the seven batch files, so an archive of thousands of images is rejected quickly.
    """
    kind, found = _locate(os.fspath(path))
    if kind != "archive":
        return kind == "folder"
    try:
        with tarfile.open(found, "r|*") as tar:
            for position, member in enumerate(tar):
                if os.path.basename(member.name) == META:
                    return True
                if position >= 20:
                    return False
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def _read_pickles(kind: str, path: str) -> dict:
    """{file name: unpickled dict} for the seven files of the official layout."""
    wanted = set(TRAIN_BATCHES + [TEST_BATCH, META])
    found = {}
    if kind == "folder":
        for name in sorted(wanted):
            file = os.path.join(path, name)
            if os.path.isfile(file):
                with open(file, "rb") as f:
                    found[name] = _unpickle(f.read(), file)
    else:
        try:
            with tarfile.open(path, "r|*") as tar:      # one sequential pass over the (compressed) archive
                for member in tar:
                    name = os.path.basename(member.name)
                    if member.isfile() and name in wanted:
                        found[name] = _unpickle(tar.extractfile(member).read(), f"{path}:{member.name}")
        except (tarfile.TarError, EOFError, OSError) as exc:     # not a tar, or a truncated/corrupt gzip stream
            raise ValueError(f"load_cifar10: {path} is not a readable tar archive ({exc}); expected "
                             f"the official {ARCHIVE_NAME}") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"load_cifar10: {path} lacks {', '.join(missing)}; expected the official python version "
                         f"({ARCHIVE_NAME} or its {FOLDER_NAME}/ folder)")
    return found


def _unpickle(raw: bytes, where: str) -> dict:
    """One batch file through the restricted unpickler; a refused or damaged one raises ValueError."""
    try:
        return safe_pickle.loads(raw, where)
    except safe_pickle.UnsafePickleError as exc:
        raise ValueError(f"load_cifar10: refused {exc}") from None
    except pickle.UnpicklingError as exc:
        raise ValueError(f"load_cifar10: {exc}") from None


def _batch_arrays(batch: dict, name: str) -> tuple:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of one unpickled batch, with its format checked."""
    if not isinstance(batch, dict) or b"data" not in batch or b"labels" not in batch:
        raise ValueError(f"load_cifar10: batch {name} has keys {sorted(batch) if isinstance(batch, dict) else type(batch).__name__}, expected b'data' and b'labels'")
    rows = np.asarray(batch[b"data"])
    labels = np.asarray(batch[b"labels"], dtype=np.int64)
    if rows.ndim != 2 or rows.shape[1] != ROW_LENGTH or rows.dtype != np.uint8:
        raise ValueError(f"load_cifar10: batch {name} has data of dtype {rows.dtype} and shape {rows.shape}, "
                         f"expected uint8 of shape (N, {ROW_LENGTH})")
    if labels.shape != (len(rows),):
        raise ValueError(f"load_cifar10: batch {name} has {len(rows)} images but {labels.size} labels")
    return rows_to_images(rows), labels


def load_cifar10(root=None, download: bool = True, progress: bool = True) -> tuple:
    """(train, test) ArrayDatasets of CIFAR-10: 50,000 and 10,000 uint8 images (32, 32, 3).

    root: the official archive, its extracted cifar-10-batches-py/ folder, or a folder holding
          either; None means the cache folder ($MINIDL_DATA or ~/.cache/minidl).
    download: when no copy is found at ``root``, download the archive into it (MD5-checked).
    progress: show a progress bar while downloading.
    """
    root = default_cache_dir() if root is None else os.fspath(root)
    kind, path = _locate(root)
    if kind is None:
        if not download:
            raise FileNotFoundError(f"load_cifar10: no CIFAR-10 copy at {root} (expected {ARCHIVE_NAME} or "
                                    f"{FOLDER_NAME}/), and download=False")
        path = download_file(URL, os.path.join(root, ARCHIVE_NAME), MD5, progress=progress)
        kind = "archive"
    batches = _read_pickles(kind, path)
    classes = [name.decode() if isinstance(name, bytes) else str(name) for name in batches[META][b"label_names"]]

    def join(names):
        pairs = [_batch_arrays(batches[name], name) for name in names]
        images = np.concatenate([images for images, _ in pairs])
        labels = np.concatenate([labels for _, labels in pairs])
        return ArrayDataset(images, labels, classes)

    return join(TRAIN_BATCHES), join([TEST_BATCH])


def write_cifar10_archive(path, train: ArrayDataset, test: ArrayDataset) -> None:
    """Write 32x32 RGB data sets as an archive in the official format (for tests and conversions).

    The training set is cut into five batches of (nearly) equal size, as data_batch_1..5.
    """
    for split, dataset in (("train", train), ("test", test)):
        if dataset.image_shape != IMAGE_SHAPE:
            raise ValueError(f"write_cifar10_archive: {split} images must be (32, 32, 3), got {dataset.image_shape}")

    def pickled_batch(dataset, start, stop):
        return pickle.dumps({b"data": images_to_rows(dataset.images[start:stop]),
                             b"labels": dataset.labels[start:stop].tolist()})

    files = {}
    bounds = np.linspace(0, len(train), len(TRAIN_BATCHES) + 1).astype(int)
    for name, start, stop in zip(TRAIN_BATCHES, bounds[:-1], bounds[1:]):
        files[name] = pickled_batch(train, start, stop)
    files[TEST_BATCH] = pickled_batch(test, 0, len(test))
    files[META] = pickle.dumps({b"label_names": [name.encode() for name in train.classes]})
    with tarfile.open(path, "w:gz") as tar:
        for name, raw in files.items():
            info = tarfile.TarInfo(f"{FOLDER_NAME}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
