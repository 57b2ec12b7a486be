"""SVHN (Street View House Numbers), cropped digits: the official "format 2" MATLAB files.

SVHN holds colour photos of house-number digits, 32x32 pixels, each centred on one digit, in
10 classes ('0' ... '9'). The official site gives three files:

    train_32x32.mat    73,257 images    (182 MB)
    test_32x32.mat     26,032 images    (64 MB)
    extra_32x32.mat   531,131 images    (1.3 GB), easier ones, an extra training set

Each is a MATLAB (v5) file with two variables, read here with ``scipy.io.loadmat``:

* ``X``: uint8 array (32, 32, 3, N): image n is ``X[:, :, :, n]``, rows, columns, RGB channels;
  so ``X.transpose(3, 0, 1, 2)`` gives minidl's (N, 32, 32, 3) layout;
* ``y``: array (N, 1) of labels 1 ... 10, where **10 means the digit 0**: label ``y % 10``.

The paper (as the maxout paper before it) trains on train + extra (``extra=True``) and keeps a
validation set of 400 images per class from train and 200 per class from extra, 6,000 in all
(:func:`svhn_validation_split`); its preprocessing is local contrast normalisation
(:class:`minidl.data.LocalContrastNormalize`). MATLAB files are plain arrays: reading one runs no code.
"""
from __future__ import annotations

import os

import numpy as np

from .dataset import ArrayDataset
from .download import default_cache_dir
from .download import download as download_file
from ..random import host_rng

URL = "http://ufldl.stanford.edu/housenumbers/"
#: split -> (file name, MD5 of the official file)
FILES = {
    "train": ("train_32x32.mat", "e26dedcc434d2e4c54c9b2d4a06d8373"),
    "test": ("test_32x32.mat", "eb5a983be6a315427106f1b164d9cef3"),
    "extra": ("extra_32x32.mat", "a93ce644f1a588dc4d68dda5feec44a7"),
}
SIZES = {"train": 73257, "test": 26032, "extra": 531131}
CLASSES = [str(digit) for digit in range(10)]
IMAGE_SHAPE = (32, 32, 3)


def read_svhn_mat(path) -> ArrayDataset:
    """One official file -> ArrayDataset of uint8 images (N, 32, 32, 3), labels 0..9 (10 becomes 0)."""
    from scipy.io import loadmat

    path = os.fspath(path)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"read_svhn_mat: {path} does not exist")
    try:
        contents = loadmat(path)
    # a corrupt or cut file makes scipy's reader fail in many ways (MatReadError, ValueError, IndexError, ...;
    # NotImplementedError for a v7.3 file, which is HDF5): all mean "not an SVHN file we can read"
    except Exception as exc:  # noqa: BLE001
        raise ValueError(f"read_svhn_mat: cannot read {path} as a MATLAB v5 file ({type(exc).__name__}: {exc}); "
                         "expected an official SVHN format-2 file such as train_32x32.mat") from None
    found = sorted(key for key in contents if not key.startswith("__"))
    if "X" not in contents or "y" not in contents:
        raise ValueError(f"read_svhn_mat: {path} holds the variables {found}, expected 'X' (32, 32, 3, N) "
                         "and 'y' (N, 1) of SVHN format 2")
    images, labels = np.asarray(contents["X"]), np.asarray(contents["y"])
    if images.ndim != 4 or images.shape[:3] != IMAGE_SHAPE or images.dtype != np.uint8:
        raise ValueError(f"read_svhn_mat: {path} has X of dtype {images.dtype} and shape {images.shape}, "
                         "expected uint8 of shape (32, 32, 3, N)")
    count = images.shape[3]
    if labels.size != count or labels.ndim > 2 or (labels.ndim == 2 and 1 not in labels.shape):
        raise ValueError(f"read_svhn_mat: {path} has {count} images but y of shape {labels.shape}; "
                         f"expected ({count}, 1)")
    labels = labels.reshape(-1)
    if labels.size and (labels.dtype.kind not in "iuf" or not np.all(np.isin(labels, np.arange(1, 11)))):
        bad = labels[~np.isin(labels, np.arange(1, 11))][:5] if labels.dtype.kind in "iuf" else labels.dtype
        raise ValueError(f"read_svhn_mat: {path} has labels outside 1..10 (10 stands for the digit 0), "
                         f"e.g. {bad}")
    images = np.ascontiguousarray(images.transpose(3, 0, 1, 2))         # (32, 32, 3, N) -> (N, 32, 32, 3)
    return ArrayDataset(images, labels.astype(np.int64) % 10, CLASSES)


def looks_like_svhn(path) -> bool:
    """True when the folder ``path`` holds train_32x32.mat and test_32x32.mat."""
    path = os.fspath(path)
    return os.path.isdir(path) and all(os.path.isfile(os.path.join(path, FILES[split][0]))
                                       for split in ("train", "test"))


def load_svhn_split(split: str, root=None, download: bool = True, progress: bool = True) -> ArrayDataset:
    """One of "train", "test", "extra" from the folder ``root`` (None: the cache folder),
    downloading its file there first when it is missing (MD5-checked)."""
    if split not in FILES:
        raise ValueError(f"load_svhn_split: split must be one of {', '.join(FILES)}, got {split!r}")
    root = default_cache_dir() if root is None else os.fspath(root)
    name, md5 = FILES[split]
    path = os.path.join(root, name)
    if not os.path.isfile(path):
        if not download:
            raise FileNotFoundError(f"load_svhn: {name} not found in {root}, and download=False")
        download_file(URL + name, path, md5, progress=progress)
    return read_svhn_mat(path)


def load_svhn(root=None, extra: bool = False, download: bool = True, progress: bool = True) -> tuple:
    """(train, test) ArrayDatasets of SVHN: uint8 images (32, 32, 3), classes '0'..'9'.

    root: a folder holding the .mat files; None means the cache folder ($MINIDL_DATA or ~/.cache/minidl).
    extra: train on train + extra (604,388 images), as the paper did; otherwise train alone (73,257).
    download: fetch the missing files into ``root`` (MD5-checked).
    """
    train = load_svhn_split("train", root, download, progress)
    if extra:
        more = load_svhn_split("extra", root, download, progress)
        train = ArrayDataset(np.concatenate([train.images, more.images]),
                             np.concatenate([train.labels, more.labels]), CLASSES)
    return train, load_svhn_split("test", root, download, progress)


def svhn_validation_split(train: ArrayDataset, extra: ArrayDataset | None = None, train_per_class: int = 400,
                          extra_per_class: int = 200, rng: np.random.Generator | None = None) -> tuple:
    """(training, validation): the usual SVHN validation set and what is left to train on.

    The validation set takes ``train_per_class`` images of every class from ``train`` and, when
    ``extra`` is given, ``extra_per_class`` of every class from it (4,000 + 2,000 by default), drawn
    at random from ``rng`` (default: minidl's seeded host generator); training is all the others of
    both, train first. Each part keeps the original order of its images.
    """
    rng = host_rng() if rng is None else rng
    kept, held = [], []
    for source, per_class in ((train, train_per_class), (extra, extra_per_class)):
        if source is None:
            continue
        chosen = np.zeros(len(source), dtype=bool)
        for label in range(len(CLASSES)):
            members = np.flatnonzero(source.labels == label)
            if len(members) < per_class:
                raise ValueError(f"svhn_validation_split: class {label} has {len(members)} images, fewer than "
                                 f"the {per_class} the validation set takes from it")
            chosen[rng.choice(members, size=per_class, replace=False)] = True
        kept.append(source.take(np.flatnonzero(~chosen)))
        held.append(source.take(np.flatnonzero(chosen)))

    def join(parts):
        return ArrayDataset(np.concatenate([p.images for p in parts]), np.concatenate([p.labels for p in parts]),
                            CLASSES)
    return join(kept), join(held)
