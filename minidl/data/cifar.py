"""What CIFAR-10 and CIFAR-100 share: the "python version" archive, its pickled batch files, their rows.

Both official archives (``cifar-10-python.tar.gz``, ``cifar-100-python.tar.gz``) hold one folder
of pickled files: batches of images and a meta file of class names. A batch is a dict with bytes
keys (it was pickled by Python 2); its ``b"data"`` is a uint8 array (N, 3072) whose row i is image
i stored as three *planes*: 1024 red values (32 rows of 32), then 1024 green, then 1024 blue.
So a row reshaped to (3, 32, 32) is channels-first, and a transpose to (32, 32, 3) gives minidl's
channels-last image layout (:func:`rows_to_images`). They differ in file names and label keys,
which a :class:`Layout` lists; everything else is here, once:

* :func:`locate` and :func:`looks_like` find a copy: the archive, its folder, or a folder holding either;
* :func:`find_or_download` downloads the archive into the cache when there is none (MD5-checked,
  written under a temporary name and renamed, so no half-written archive is ever left there);
* :func:`_read_pickles` reads the files of the layout, from the folder or in one pass over the archive;
  every batch file goes through it, for both data sets;
* :func:`batch_arrays` checks a batch and turns it into (images, labels);
* :func:`write_archive` writes an archive in the official format (for tests and conversions).

Unpickling an ordinary pickle can run code hidden in the file, so every batch file goes through one
restricted unpickler (:func:`_unpickle`, :mod:`minidl.data.safe_pickle`) that admits only the dicts, lists,
bytes, ints and uint8 / int64 arrays these files hold and refuses anything else; the loaders also check
the MD5 of what they download against the official one.
"""
from __future__ import annotations

import dataclasses
import io
import os
import pickle
import tarfile

import numpy as np

from . import safe_pickle
from .download import default_cache_dir
from .download import download as download_file

IMAGE_SHAPE = (32, 32, 3)
ROW_LENGTH = 32 * 32 * 3   # 3072 values per image


@dataclasses.dataclass(frozen=True)
class Layout:
    """The files of one official CIFAR archive."""
    caller: str              # the loader's name, for messages ("load_cifar10")
    title: str               # the data set's name, for messages ("CIFAR-10")
    url: str                 # the official address of the archive
    md5: str                 # the archive's MD5
    archive_name: str        # "cifar-10-python.tar.gz"
    folder_name: str         # the folder inside it, "cifar-10-batches-py"
    train_files: tuple       # the batch files of the training set
    test_files: tuple        # the batch files of the test set
    meta: str                # the file of class names

    @property
    def files(self) -> tuple:
        return self.train_files + self.test_files + (self.meta,)


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


def locate(root: str, layout: Layout):
    """Find a copy at ``root``: ('archive', file), ('folder', dir) or (None, None).

    ``root`` may be the archive itself, the extracted folder, or a folder holding either of them.
    """
    if os.path.isfile(root):
        return "archive", root
    if os.path.isfile(os.path.join(root, layout.meta)):
        return "folder", root
    if os.path.isfile(os.path.join(root, layout.folder_name, layout.meta)):
        return "folder", os.path.join(root, layout.folder_name)
    if os.path.isfile(os.path.join(root, layout.archive_name)):
        return "archive", os.path.join(root, layout.archive_name)
    return None, None


def looks_like(path, layout: Layout) -> bool:
    """True when ``path`` is (or holds) the official archive of ``layout`` or its extracted folder.

    For an archive only the first few members are read: the official one starts with its folder
    and its batch files, so an archive of thousands of images is rejected quickly.
    """
    kind, found = locate(os.fspath(path), layout)
    if kind != "archive":
        return kind == "folder"
    try:
        with tarfile.open(found, "r|*") as tar:
            for position, member in enumerate(tar):
                if member.name.endswith(f"{layout.folder_name}/{layout.meta}"):
                    return True
                if position >= 20:
                    return False
    except (tarfile.TarError, OSError, EOFError):
        return False
    return False


def find_or_download(root, layout: Layout, download: bool, progress: bool) -> tuple:
    """(kind, path) of the copy at ``root`` (None: the cache folder), downloading the archive there if need be."""
    root = default_cache_dir() if root is None else os.fspath(root)
    kind, path = locate(root, layout)
    if kind is None:
        if not download:
            raise FileNotFoundError(f"{layout.caller}: no {layout.title} copy at {root} (expected {layout.archive_name} or "
                                    f"{layout.folder_name}/), and download=False")
        path = download_file(layout.url, os.path.join(root, layout.archive_name), layout.md5, progress=progress)
        kind = "archive"
    return kind, path


def _read_pickles(kind: str, path: str, layout: Layout) -> dict:
    """{file name: unpickled dict} for the files of ``layout``, from its folder or its archive."""
    wanted = set(layout.files)
    found = {}
    if kind == "folder":
        for name in sorted(wanted):
            file = os.path.join(path, name)
            if os.path.isfile(file):
                with open(file, "rb") as f:
                    found[name] = _unpickle(f.read(), file, layout)
    else:
        try:
            with tarfile.open(path, "r|*") as tar:      # one sequential pass over the (compressed) archive
                for member in tar:
                    name = os.path.basename(member.name)
                    if member.isfile() and name in wanted:
                        found[name] = _unpickle(tar.extractfile(member).read(), f"{path}:{member.name}", layout)
        except (tarfile.TarError, EOFError, OSError) as exc:     # not a tar, or a truncated/corrupt gzip stream
            raise ValueError(f"{layout.caller}: {path} is not a readable tar archive ({exc}); expected "
                             f"the official {layout.archive_name}") from None
    missing = sorted(wanted - set(found))
    if missing:
        raise ValueError(f"{layout.caller}: {path} lacks {', '.join(missing)}; expected the official python version "
                         f"({layout.archive_name} or its {layout.folder_name}/ folder)")
    return found


def _unpickle(raw: bytes, where: str, layout: Layout) -> dict:
    """One batch file through the restricted unpickler; a refused or damaged one raises ValueError."""
    try:
        return safe_pickle.loads(raw, where)
    except safe_pickle.UnsafePickleError as exc:
        raise ValueError(f"{layout.caller}: refused {exc}") from None
    except pickle.UnpicklingError as exc:
        raise ValueError(f"{layout.caller}: {exc}") from None


def batch_arrays(batch: dict, name: str, label_key: bytes, num_classes: int, caller: str) -> tuple:
    """(images (N, 32, 32, 3) uint8, labels (N,) int64) of one unpickled batch, with its format checked.

    label_key: the key of the labels (b"labels" in CIFAR-10, b"fine_labels" or b"coarse_labels" in CIFAR-100),
    each of which must lie in [0, num_classes).
    """
    if not isinstance(batch, dict) or b"data" not in batch or label_key not in batch:
        keys = sorted(batch) if isinstance(batch, dict) else type(batch).__name__
        raise ValueError(f"{caller}: batch {name} has keys {keys}, expected b'data' and {label_key!r}")
    rows = np.asarray(batch[b"data"])
    labels = np.asarray(batch[label_key])
    if rows.ndim != 2 or rows.shape[1] != ROW_LENGTH or rows.dtype != np.uint8:
        raise ValueError(f"{caller}: batch {name} has data of dtype {rows.dtype} and shape {rows.shape}, "
                         f"expected uint8 of shape (N, {ROW_LENGTH})")
    if labels.shape != (len(rows),) or (labels.size and labels.dtype.kind not in "iu"):
        raise ValueError(f"{caller}: batch {name} has {len(rows)} images but labels of dtype {labels.dtype} and "
                         f"shape {labels.shape}; expected {len(rows)} integers")
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(f"{caller}: batch {name} has {label_key.decode()} from {labels.min()} to {labels.max()}, "
                         f"expected them in [0, {num_classes - 1}] ({num_classes} classes)")
    return rows_to_images(rows), labels.astype(np.int64)


def class_names(meta: dict, key: bytes, caller: str) -> list:
    """The class names stored under ``key`` in the meta file, as str."""
    if not isinstance(meta, dict) or key not in meta:
        keys = sorted(meta) if isinstance(meta, dict) else type(meta).__name__
        raise ValueError(f"{caller}: the meta file has keys {keys}, expected {key!r}")
    return [name.decode() if isinstance(name, bytes) else str(name) for name in meta[key]]


def write_archive(path, layout: Layout, files: dict) -> None:
    """Write ``files`` ({file name: dict with bytes keys}) as a gzipped archive of ``layout``'s folder."""
    with tarfile.open(path, "w:gz") as tar:
        for name, contents in files.items():
            raw = pickle.dumps(contents)
            info = tarfile.TarInfo(f"{layout.folder_name}/{name}")
            info.size = len(raw)
            tar.addfile(info, io.BytesIO(raw))
