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
CIFAR-100 has the same format with other file names: what both share is in
:mod:`minidl.data.cifar`.

Unpickling an ordinary pickle can run code hidden in the file, so the batches are read by a restricted
unpickler (:mod:`minidl.data.safe_pickle`, through :mod:`minidl.data.cifar`) that admits only the dicts,
lists, bytes, ints and uint8 / int64 arrays these files hold and refuses anything else; :func:`load_cifar10`
also checks the MD5 of what it downloads against the official one.
"""
from __future__ import annotations

import numpy as np

from . import cifar
from .cifar import IMAGE_SHAPE, ROW_LENGTH, images_to_rows, rows_to_images  # noqa: F401  (their old home)
from .dataset import ArrayDataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
MD5 = "c58f30108f718f92721af3b95e74349a"
ARCHIVE_NAME = "cifar-10-python.tar.gz"
FOLDER_NAME = "cifar-10-batches-py"
TRAIN_BATCHES = [f"data_batch_{i}" for i in range(1, 6)]
TEST_BATCH = "test_batch"
META = "batches.meta"
LAYOUT = cifar.Layout(caller="load_cifar10", title="CIFAR-10", url=URL, md5=MD5, archive_name=ARCHIVE_NAME,
                      folder_name=FOLDER_NAME, train_files=tuple(TRAIN_BATCHES), test_files=(TEST_BATCH,), meta=META)


def looks_like_cifar10(path) -> bool:
    """True when ``path`` is (or holds) the official python-version archive or its extracted folder."""
    return cifar.looks_like(path, LAYOUT)


def load_cifar10(root=None, download: bool = True, progress: bool = True) -> tuple:
    """(train, test) ArrayDatasets of CIFAR-10: 50,000 and 10,000 uint8 images (32, 32, 3).

    root: the official archive, its extracted cifar-10-batches-py/ folder, or a folder holding
          either; None means the cache folder ($MINIDL_DATA or ~/.cache/minidl).
    download: when no copy is found at ``root``, download the archive into it (MD5-checked).
    progress: show a progress bar while downloading.
    """
    kind, path = cifar.find_or_download(root, LAYOUT, download, progress)
    batches = cifar._read_pickles(kind, path, LAYOUT)
    classes = cifar.class_names(batches[META], b"label_names", LAYOUT.caller)

    def join(names):
        pairs = [cifar.batch_arrays(batches[name], name, b"labels", len(classes), LAYOUT.caller) for name in names]
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

    def batch(dataset, start, stop):
        return {b"data": images_to_rows(dataset.images[start:stop]), b"labels": dataset.labels[start:stop].tolist()}

    files = {}
    bounds = np.linspace(0, len(train), len(TRAIN_BATCHES) + 1).astype(int)
    for name, start, stop in zip(TRAIN_BATCHES, bounds[:-1], bounds[1:]):
        files[name] = batch(train, start, stop)
    files[TEST_BATCH] = batch(test, 0, len(test))
    files[META] = {b"label_names": [name.encode() for name in train.classes]}
    cifar.write_archive(path, LAYOUT, files)
