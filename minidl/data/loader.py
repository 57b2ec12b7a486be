"""`DataLoader`: an epoch of shuffled minibatches, ready for the model, on the chosen backend.

Iterating over a loader walks once through the data set (one *epoch*) and
yields ``(x, y)`` minibatches. For each batch:

1. pick its images on the host, from a seeded random permutation of the data
   set (so every image is used exactly once per epoch, in a new order);
2. move them to the backend (the GPU for CuPy) *as uint8*: 4x fewer bytes to
   copy than float32;
3. there, convert to float32 in [0, 1], apply the fitted preprocessing
   (``transform``), then the random augmentation (``augment``);
   a data set of float32 images (preprocessed once for all, see
   :func:`~minidl.data.apply_to_images`) skips the conversion: its images are
   copied as float32 and go to ``transform`` (usually None) as they are;
4. hand the model ``x`` shaped (N, C, H, W), as the model expects, but as a
   transposed *view* of channels-last (N, H, W, C) memory, the layout minidl
   keeps activations in (``x.transpose(0, 2, 3, 1)`` is C-contiguous);
   ``y`` is the int64 labels (N,) on the same backend.

Randomness comes from ``rng`` if given, else from minidl's seeded host
generator, *looked up when an epoch starts* (not when the loader is built):
after ``minidl.manual_seed`` or restoring a checkpoint's random state, the
next epoch reproduces the same order and augmentations.

The trainer uses the three steps separately to resume in the middle of an
epoch: :meth:`DataLoader.shuffled_order` (saved in the checkpoint),
:meth:`DataLoader.batches` and :meth:`DataLoader.load`.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..random import host_rng
from .preprocess import to_float


class DataLoader:
    """Minibatches ``(x, y)`` of an :class:`~minidl.data.ArrayDataset`; see the module docstring.

    dataset:    an ArrayDataset (images uint8 (N, H, W, C), or float32 already preprocessed; labels int64 (N,))
    batch_size: images per batch; the last batch may be smaller unless ``drop_last``
    shuffle:    a new random order every epoch (training) or the stored order (evaluation)
    drop_last:  skip the last, smaller batch
    transform:  a fitted preprocessing callable on float32 (N, H, W, C) batches, or None
    augment:    a callable ``augment(x, rng)`` on float32 (N, H, W, C) batches (e.g. Augment), or None
    rng:        the numpy Generator for shuffling and augmentation (default: minidl.random.host_rng())
    backend:    'numpy' or 'cupy' for the yielded arrays (default: the active backend)
    """

    def __init__(self, dataset, batch_size: int, shuffle: bool = True, drop_last: bool = False,
                 transform=None, augment=None, rng: np.random.Generator | None = None, backend: str | None = None):
        if isinstance(batch_size, bool) or not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
            raise ValueError(f"DataLoader: batch_size must be an int >= 1, got {batch_size!r}")
        if not hasattr(dataset, "images") or not hasattr(dataset, "labels"):
            raise TypeError(f"DataLoader: expected an ArrayDataset (with .images and .labels), "
                            f"got {type(dataset).__name__}")
        if transform is not None and not callable(transform):
            raise TypeError(f"DataLoader: transform must be callable or None, got {type(transform).__name__}")
        if augment is not None and not callable(augment):
            raise TypeError(f"DataLoader: augment must be callable or None, got {type(augment).__name__}")
        self.dataset = dataset
        self.batch_size = int(batch_size)
        self.shuffle, self.drop_last = shuffle, drop_last
        self.transform, self.augment = transform, augment
        self.rng, self.backend = rng, backend

    def __len__(self) -> int:
        """The number of batches in an epoch."""
        full_batches, remainder = divmod(len(self.dataset), self.batch_size)
        return full_batches + (1 if remainder and not self.drop_last else 0)

    def __repr__(self) -> str:
        return (f"DataLoader({len(self.dataset)} images, batch_size={self.batch_size}, shuffle={self.shuffle}, "
                f"drop_last={self.drop_last}, {len(self)} batches)")

    def _generator(self) -> np.random.Generator:
        """The Generator to draw from now: ours, or minidl's host generator as it is at this moment."""
        return host_rng() if self.rng is None else self.rng

    def shuffled_order(self) -> np.ndarray:
        """The order of the samples for one epoch: a seeded permutation of 0..N-1, or 0..N-1 itself without shuffle."""
        count = len(self.dataset)
        return self._generator().permutation(count) if self.shuffle else np.arange(count)

    def batches(self, order) -> list:
        """``order`` cut into consecutive index arrays of ``batch_size`` (the short last one dropped if drop_last)."""
        order = np.asarray(order)
        cuts = [order[start:start + self.batch_size] for start in range(0, len(order), self.batch_size)]
        if self.drop_last and cuts and len(cuts[-1]) < self.batch_size:
            cuts.pop()
        return cuts

    def load(self, indices) -> tuple:
        """The batch of the samples at ``indices``: (x float32 (N, C, H, W) channels-last view, y int64 (N,))."""
        indices = np.asarray(indices, dtype=np.int64)
        images = backends.to_backend(self.dataset.images[indices], self.backend)     # uint8 (or float32) (N, H, W, C)
        labels = backends.to_backend(self.dataset.labels[indices], self.backend)     # int64 (N,)
        # float32 in [0, 1]; float32 images, preprocessed beforehand, are used as they are (a copy: fancy indexing)
        x = to_float(images) if images.dtype == np.uint8 else images
        if self.transform is not None:
            x = self.transform(x)
        if self.augment is not None:
            x = self.augment(x, self._generator())
        xp = backends.get_array_module(x)
        x = xp.ascontiguousarray(x, dtype=xp.float32)      # (N, H, W, C) in memory; a no-op when it already is
        return x.transpose(0, 3, 1, 2), labels              # the logical (N, C, H, W) view

    def __iter__(self):
        for indices in self.batches(self.shuffled_order()):
            yield self.load(indices)
