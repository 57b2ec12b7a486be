"""`DataLoader`: shuffled minibatches moved to the active backend.

For each batch: pick its images on the host (uint8, 4x less to move than
float32), move them to the backend, scale to [0, 1], apply the fitted
preprocessing and the augmentation there, and hand the model an
(N, C, H, W) view of channels-last memory (see minidl/kernels/layout.py).

The shuffled order of an epoch comes from minidl's seeded host generator,
and is exposed (:meth:`shuffled_order`, :meth:`batches`, :meth:`load`) so the
trainer can checkpoint it and resume in the middle of an epoch.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..random import host_rng
from .preprocess import to_float


class DataLoader:
    def __init__(self, dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 transform=None, augment=None, backend: str | None = None):
        if batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.dataset, self.batch_size, self.shuffle, self.drop_last = dataset, batch_size, shuffle, drop_last
        self.transform, self.augment, self.backend = transform, augment, backend

    def __len__(self) -> int:
        n = len(self.dataset)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def shuffled_order(self) -> np.ndarray:
        """This epoch's order of the samples (a seeded permutation, or 0..N-1 without shuffle)."""
        n = len(self.dataset)
        return host_rng().permutation(n) if self.shuffle else np.arange(n)

    def batches(self, order) -> list:
        """``order`` cut into index arrays of batch_size (the short last one dropped if drop_last)."""
        cuts = [order[i:i + self.batch_size] for i in range(0, len(order), self.batch_size)]
        if self.drop_last and cuts and len(cuts[-1]) < self.batch_size:
            cuts.pop()
        return cuts

    def load(self, indices):
        """(x (N, C, H, W) float32, y (N,) int64) on the backend, preprocessed and augmented."""
        indices = np.sort(indices) if not self.shuffle else np.asarray(indices)
        images = backends.to_backend(self.dataset.images[indices], self.backend)
        labels = backends.to_backend(self.dataset.labels[indices], self.backend)
        x = to_float(images)
        if self.transform is not None:
            x = self.transform(x)
        if self.augment is not None:
            x = self.augment(x)
        xp = backends.get_array_module(x)
        x = xp.ascontiguousarray(x, dtype=xp.float32)
        return x.transpose(0, 3, 1, 2), labels

    def __iter__(self):
        for indices in self.batches(self.shuffled_order()):
            yield self.load(indices)
