"""minidl.data: data sets, preprocessing, augmentation and minibatches.

The path of an image from disk to the model::

    train, test = load_cifar10()                    # ArrayDatasets: uint8 (N, 32, 32, 3) + int64 labels
    prep = Standardize().fit(to_float(train.images))    # statistics of the training set only
    loader = DataLoader(train, 128, shuffle=True, transform=prep, augment=Augment(pad=4))
    for x, y in loader:                             # x float32 (N, C, H, W) on the active backend
        ...

* Data sets (uint8 images kept in memory): :func:`load_cifar10` and :func:`load_cifar100` (official
  archives; what they share is in :mod:`minidl.data.cifar`), :func:`load_svhn` (official .mat files),
  :func:`load_mnist` (official idx files), :func:`load_image_folder` (train/ and test/ folders of
  PNG/JPEG files, or an archive of them; decoded once, then cached), :class:`ArrayDataset`.
* Files: :func:`download` (progress bar, MD5 check, atomic rename), :func:`md5sum`, :class:`DownloadError`.
* Preprocessing, fitted on the training set: :class:`Standardize`, :class:`GlobalContrastNormalize`,
  :class:`ZCAWhitening`, :class:`LocalContrastNormalize`, :class:`Compose`, :func:`to_float`; :func:`apply_to_images` applies a fitted
  one once to a whole set (float32 images an ArrayDataset and a DataLoader take as they are).
* Augmentation on the batch's backend: :class:`Augment`, :func:`random_translate`, :func:`random_hflip`,
  :func:`translate`, :func:`hflip`.
* Batching: :class:`DataLoader`.
"""
from .augment import Augment, hflip, random_hflip, random_translate, translate
from .cifar import images_to_rows, rows_to_images
from .cifar10 import load_cifar10, looks_like_cifar10, write_cifar10_archive
from .cifar100 import cifar100_coarse, load_cifar100, looks_like_cifar100, write_cifar100_archive
from .dataset import ArrayDataset
from .download import DownloadError, default_cache_dir, download, md5sum
from .image_folder import cache_file_for, decode_image, load_image_folder
from .loader import DataLoader
from .mnist import load_mnist, looks_like_mnist, read_idx_images, read_idx_labels, write_idx
from .preprocess import (Compose, GlobalContrastNormalize, LocalContrastNormalize, Standardize, Transform,
                         ZCAWhitening, apply_to_images, to_float)
from .svhn import load_svhn, load_svhn_split, looks_like_svhn, read_svhn_mat, svhn_validation_split

__all__ = [
    "ArrayDataset", "DataLoader",
    "load_cifar10", "looks_like_cifar10", "write_cifar10_archive", "rows_to_images", "images_to_rows",
    "load_cifar100", "looks_like_cifar100", "write_cifar100_archive", "cifar100_coarse",
    "load_svhn", "load_svhn_split", "looks_like_svhn", "read_svhn_mat", "svhn_validation_split",
    "load_mnist", "looks_like_mnist", "read_idx_images", "read_idx_labels", "write_idx",
    "load_image_folder", "cache_file_for", "decode_image",
    "download", "md5sum", "DownloadError", "default_cache_dir",
    "Standardize", "GlobalContrastNormalize", "ZCAWhitening", "LocalContrastNormalize", "Compose", "Transform", "to_float", "apply_to_images",
    "Augment", "random_translate", "random_hflip", "translate", "hflip",
]
