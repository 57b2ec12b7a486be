"""`ArrayDataset`: a labelled image data set held in memory as two arrays.

An image classification data set is three things:

* ``images``  uint8 array (N, H, W, C): N pictures of H rows and W columns with
  C channels (3 for RGB, 1 for grayscale), *channels-last*, the order in which
  image files and the official archives store pixels. One byte per value keeps
  the set small: CIFAR-10's 50,000 training images take 150 MB as uint8 and
  would take 600 MB as float32. A float32 array of the same shape is accepted
  too: images already preprocessed once for all (see
  :func:`minidl.data.apply_to_images`), which the loader then uses as they are.
* ``labels``  int64 array (N,): ``labels[i]`` is the class index of ``images[i]``,
  a number in [0, number of classes).
* ``classes`` list of names: ``classes[k]`` is the name of class k.

Everything else (conversion to float, normalisation, augmentation, batching)
happens later, one batch at a time, in :mod:`minidl.data.loader`; an expensive
preprocessing may instead be applied once to the whole set beforehand.

Files on disk are usually sorted by class, so the first n images are *not* a
sample of the data set: :meth:`ArrayDataset.subset` and
:meth:`ArrayDataset.split` draw their images at random, from a seeded generator.
"""
from __future__ import annotations

import numpy as np

from ..random import host_rng


class ArrayDataset:
    """Images (N, H, W, C) uint8 (or float32, preprocessed), labels (N,) int64 and class names, checked when made.

    >>> ds = ArrayDataset(np.zeros((4, 8, 8, 3), np.uint8), [0, 1, 1, 0], ["cat", "dog"])
    >>> len(ds), ds.image_shape, ds.num_classes
    (4, (8, 8, 3), 2)
    """

    def __init__(self, images, labels, classes):
        images = np.asarray(images)
        labels = np.asarray(labels)
        if images.dtype not in (np.uint8, np.float32) or images.ndim != 4:
            raise ValueError(
                "ArrayDataset: images must be a uint8 array of shape (N, H, W, C) "
                "(or float32, for images already preprocessed), "
                f"got dtype {images.dtype} and shape {images.shape}"
            )
        if labels.ndim != 1 or (labels.size > 0 and labels.dtype.kind not in "iu"):
            raise ValueError(
                "ArrayDataset: labels must be a 1-D integer array of shape (N,), "
                f"got dtype {labels.dtype} and shape {labels.shape}"
            )
        if len(images) != len(labels):
            raise ValueError(f"ArrayDataset: got {len(images)} images but {len(labels)} labels; expected one label per image")
        classes = [str(name) for name in classes]
        if len(set(classes)) != len(classes):
            raise ValueError(f"ArrayDataset: class names must be distinct, got {classes}")
        if len(labels) > 0 and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(
                f"ArrayDataset: labels must lie in [0, {len(classes) - 1}] for {len(classes)} classes, "
                f"got values from {labels.min()} to {labels.max()}"
            )
        self.images = images
        self.labels = labels.astype(np.int64, copy=False)
        self.classes = classes

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def image_shape(self) -> tuple:
        """(H, W, C) of every image."""
        return tuple(self.images.shape[1:])

    @property
    def num_classes(self) -> int:
        return len(self.classes)

    def __repr__(self) -> str:
        height, width, channels = self.image_shape
        return (f"ArrayDataset({len(self)} images of {height}x{width}x{channels}, "
                f"{self.num_classes} classes: {', '.join(self.classes[:5])}{', ...' if self.num_classes > 5 else ''})")

    def take(self, indices) -> "ArrayDataset":
        """A new data set holding the images at ``indices`` (a copy, in that order)."""
        indices = np.asarray(indices, dtype=np.int64)
        return ArrayDataset(self.images[indices], self.labels[indices], self.classes)

    def subset(self, n: int, rng: np.random.Generator | None = None) -> "ArrayDataset":
        """``n`` images drawn at random without replacement (kept in their original order).

        rng: the numpy Generator to draw from (default: minidl's seeded host generator), so the
        same seed always picks the same images.
        """
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or not 1 <= n <= len(self):
            raise ValueError(f"ArrayDataset.subset: n must be an integer in [1, {len(self)}], got {n!r}")
        rng = host_rng() if rng is None else rng
        chosen = np.sort(rng.choice(len(self), size=int(n), replace=False))
        return self.take(chosen)

    def split(self, first_size, rng: np.random.Generator | None = None) -> tuple:
        """Split at random into two disjoint data sets, e.g. (train, validation).

        first_size: the number of images of the first part (an int), or its fraction of the
        data set (a float in (0, 1)); the second part holds all the others.
        Returns (first, second), each in the original order of its images.
        """
        if isinstance(first_size, float):
            if not 0.0 < first_size < 1.0:
                raise ValueError(f"ArrayDataset.split: a fractional first_size must lie in (0, 1), got {first_size}")
            first_size = int(round(first_size * len(self)))
        if isinstance(first_size, bool) or not isinstance(first_size, (int, np.integer)) \
                or not 0 < first_size < len(self):
            raise ValueError(f"ArrayDataset.split: first_size must leave both parts non-empty, i.e. lie in "
                             f"[1, {len(self) - 1}] for {len(self)} images, got {first_size!r}")
        rng = host_rng() if rng is None else rng
        order = rng.permutation(len(self))
        return self.take(np.sort(order[:first_size])), self.take(np.sort(order[first_size:]))
