"""CIFAR-100 from its official "python version" archive: 100 fine classes in 20 superclasses.

CIFAR-100 holds 60,000 colour images of 32x32 pixels, like CIFAR-10, but in 100 classes of 600
images (500 for training, 100 for testing). Each class (its *fine* label) belongs to one of 20
*superclasses* (its *coarse* label): apple, mushroom, orange, pear and sweet_pepper make up
fruit_and_vegetables. The official archive ``cifar-100-python.tar.gz`` (169 MB) holds a folder
``cifar-100-python/`` with three pickled files, in the format of CIFAR-10's (:mod:`minidl.data.cifar`):

* ``train``: 50,000 images, one batch;
* ``test``:  10,000 images;
* ``meta``:  the class names, under ``b"fine_label_names"`` and ``b"coarse_label_names"``.

A batch holds ``b"data"`` (N, 3072) as in CIFAR-10, and two label lists instead of one:
``b"fine_labels"`` in [0, 99] and ``b"coarse_labels"`` in [0, 19]. Both lists of names are in
alphabetical order (apple = 0 ... worm = 99; aquatic_mammals = 0 ... vehicles_2 = 19), so an image
folder named by fine class, sorted, gets the official fine ids; :func:`cifar100_coarse` relabels
such a data set with the superclasses of :data:`SUPERCLASSES`.
"""
from __future__ import annotations

import numpy as np

from . import cifar
from .dataset import ArrayDataset

URL = "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz"
MD5 = "eb9058c3a382ffc7106e4002c42a8d85"
ARCHIVE_NAME = "cifar-100-python.tar.gz"
FOLDER_NAME = "cifar-100-python"
LAYOUT = cifar.Layout(caller="load_cifar100", title="CIFAR-100", url=URL, md5=MD5, archive_name=ARCHIVE_NAME,
                      folder_name=FOLDER_NAME, train_files=("train",), test_files=("test",), meta="meta")
LABEL_KEYS = {"fine": (b"fine_labels", b"fine_label_names"), "coarse": (b"coarse_labels", b"coarse_label_names")}

#: the 20 superclasses (in the order of their official ids) and the 5 fine classes of each
SUPERCLASSES = {
    "aquatic_mammals": ("beaver", "dolphin", "otter", "seal", "whale"),
    "fish": ("aquarium_fish", "flatfish", "ray", "shark", "trout"),
    "flowers": ("orchid", "poppy", "rose", "sunflower", "tulip"),
    "food_containers": ("bottle", "bowl", "can", "cup", "plate"),
    "fruit_and_vegetables": ("apple", "mushroom", "orange", "pear", "sweet_pepper"),
    "household_electrical_devices": ("clock", "keyboard", "lamp", "telephone", "television"),
    "household_furniture": ("bed", "chair", "couch", "table", "wardrobe"),
    "insects": ("bee", "beetle", "butterfly", "caterpillar", "cockroach"),
    "large_carnivores": ("bear", "leopard", "lion", "tiger", "wolf"),
    "large_man-made_outdoor_things": ("bridge", "castle", "house", "road", "skyscraper"),
    "large_natural_outdoor_scenes": ("cloud", "forest", "mountain", "plain", "sea"),
    "large_omnivores_and_herbivores": ("camel", "cattle", "chimpanzee", "elephant", "kangaroo"),
    "medium_mammals": ("fox", "porcupine", "possum", "raccoon", "skunk"),
    "non-insect_invertebrates": ("crab", "lobster", "snail", "spider", "worm"),
    "people": ("baby", "boy", "girl", "man", "woman"),
    "reptiles": ("crocodile", "dinosaur", "lizard", "snake", "turtle"),
    "small_mammals": ("hamster", "mouse", "rabbit", "shrew", "squirrel"),
    "trees": ("maple_tree", "oak_tree", "palm_tree", "pine_tree", "willow_tree"),
    "vehicles_1": ("bicycle", "bus", "motorcycle", "pickup_truck", "train"),
    "vehicles_2": ("lawn_mower", "rocket", "streetcar", "tank", "tractor"),
}
#: the 100 fine class names in the order of their official ids (alphabetical)
FINE_CLASSES = sorted(name for members in SUPERCLASSES.values() for name in members)
COARSE_CLASSES = list(SUPERCLASSES)


def looks_like_cifar100(path) -> bool:
    """True when ``path`` is (or holds) the official python-version archive or its extracted folder."""
    return cifar.looks_like(path, LAYOUT)


def load_cifar100(root=None, labels: str = "fine", download: bool = True, progress: bool = True) -> tuple:
    """(train, test) ArrayDatasets of CIFAR-100: 50,000 and 10,000 uint8 images (32, 32, 3).

    root: the official archive, its extracted cifar-100-python/ folder, or a folder holding either;
          None means the cache folder ($MINIDL_DATA or ~/.cache/minidl).
    labels: "fine" (100 classes) or "coarse" (the 20 superclasses).
    download: when no copy is found at ``root``, download the archive into it (MD5-checked).
    progress: show a progress bar while downloading.
    """
    if labels not in LABEL_KEYS:
        raise ValueError(f"load_cifar100: labels must be 'fine' or 'coarse', got {labels!r}")
    label_key, names_key = LABEL_KEYS[labels]
    kind, path = cifar.find_or_download(root, LAYOUT, download, progress)
    files = cifar._read_pickles(kind, path, LAYOUT)
    classes = cifar.class_names(files["meta"], names_key, LAYOUT.caller)

    def split(name):
        images, targets = cifar.batch_arrays(files[name], name, label_key, len(classes), LAYOUT.caller)
        return ArrayDataset(images, targets, classes)

    return split("train"), split("test")


def cifar100_coarse(dataset: ArrayDataset) -> ArrayDataset:
    """The same images labelled by superclass: a data set whose classes are the 100 fine names
    (in any order, e.g. an image folder's) -> one whose classes are the 20 of :data:`COARSE_CLASSES`."""
    if sorted(dataset.classes) != FINE_CLASSES:
        unknown = sorted(set(dataset.classes) - set(FINE_CLASSES))[:5]
        raise ValueError(f"cifar100_coarse: expected the 100 CIFAR-100 fine class names, got {dataset.num_classes} "
                         f"classes{f' (not CIFAR-100 names: {unknown})' if unknown else ''}")
    coarse_of = {fine: k for k, members in enumerate(SUPERCLASSES.values()) for fine in members}
    table = np.array([coarse_of[name] for name in dataset.classes], dtype=np.int64)    # own fine id -> coarse id
    return ArrayDataset(dataset.images, table[dataset.labels], COARSE_CLASSES)


def write_cifar100_archive(path, train: ArrayDataset, test: ArrayDataset) -> None:
    """Write data sets labelled with the 100 fine classes as an archive in the official format.

    The coarse labels are those of :data:`SUPERCLASSES`; the classes must be :data:`FINE_CLASSES`.
    """
    for split, dataset in (("train", train), ("test", test)):
        if dataset.image_shape != cifar.IMAGE_SHAPE:
            raise ValueError(f"write_cifar100_archive: {split} images must be (32, 32, 3), got {dataset.image_shape}")
        if dataset.classes != FINE_CLASSES:
            raise ValueError(f"write_cifar100_archive: {split} classes must be the 100 fine names in id order")

    def batch(dataset):
        return {b"data": cifar.images_to_rows(dataset.images), b"fine_labels": dataset.labels.tolist(),
                b"coarse_labels": cifar100_coarse(dataset).labels.tolist()}

    meta = {b"fine_label_names": [name.encode() for name in FINE_CLASSES],
            b"coarse_label_names": [name.encode() for name in COARSE_CLASSES]}
    cifar.write_archive(path, LAYOUT, {"train": batch(train), "test": batch(test), "meta": meta})
