"""`ArrayDataset`: images and labels held in memory as arrays.

images: uint8 (N, H, W, C), channels-last as they come from image files
        (C = 3 for RGB, 1 for grayscale); labels: int64 (N,); classes: names.
"""
from __future__ import annotations

import numpy as np


class ArrayDataset:
    def __init__(self, images, labels, classes):
        images, labels = np.asarray(images), np.asarray(labels)
        if images.ndim != 4 or images.dtype != np.uint8:
            raise ValueError(f"ArrayDataset: images must be uint8 of shape (N, H, W, C), got {images.dtype} {images.shape}")
        if labels.ndim != 1 or labels.dtype.kind not in "iu":
            raise ValueError(f"ArrayDataset: labels must be integers of shape (N,), got {labels.dtype} {labels.shape}")
        if len(images) != len(labels):
            raise ValueError(f"ArrayDataset: {len(images)} images but {len(labels)} labels")
        classes = [str(c) for c in classes]
        if len(labels) and (labels.min() < 0 or labels.max() >= len(classes)):
            raise ValueError(f"ArrayDataset: labels must lie in [0, {len(classes) - 1}] for {len(classes)} classes, "
                             f"got [{labels.min()}, {labels.max()}]")
        self.images, self.labels, self.classes = images, labels.astype(np.int64), classes

    def __len__(self) -> int:
        return len(self.labels)

    def __repr__(self) -> str:
        return f"ArrayDataset({len(self)} images of {self.images.shape[1:]}, {len(self.classes)} classes)"

    def subset(self, n: int, rng: np.random.Generator) -> "ArrayDataset":
        """``n`` images drawn at random without replacement (a prefix would be sorted by class)."""
        if not 1 <= n <= len(self):
            raise ValueError(f"ArrayDataset.subset: n must lie in [1, {len(self)}], got {n}")
        keep = np.sort(rng.choice(len(self), size=n, replace=False))
        return ArrayDataset(self.images[keep], self.labels[keep], self.classes)
