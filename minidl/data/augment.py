"""Data augmentation: random shifts and mirror images of a batch, on the batch's own backend.

A shifted or mirrored airplane is still an airplane, so showing the network a
slightly different version of every training image in every epoch multiplies
the data for free and reduces overfitting. Two classic CIFAR-10 augmentations:

* **translation**: pad the image with ``pad`` zeros on every side and crop a
  window of the original size at a random position; the content moves by a
  random (dy, dx) in [-pad, pad]^2 and zeros fill the uncovered border.
* **horizontal flip**: mirror the image left-right with probability p (not
  up-down: upside-down airplanes are rare in photos).

Each function comes in two layers: a deterministic one that applies given
shifts or flips (:func:`translate`, :func:`hflip`, easy to test), and a random
one that draws them (:func:`random_translate`, :func:`random_hflip`).

The random choices are drawn on the host from a NumPy Generator (minidl's
seeded :func:`minidl.random.host_rng` by default), so a seed, or a restored
checkpoint, reproduces them exactly. Only these N small numbers are copied to
the GPU; the images stay where they are, and every step is one vectorised
array operation over the whole batch (no Python loop over images).

Images here are float (or uint8) batches (N, H, W, C), channels-last.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..random import host_rng


def _check_batch(x, caller: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{caller}: expected a batch of images (N, H, W, C), got shape {tuple(x.shape)}")


def translate(x, shifts):
    """Shift each image by its own (dy, dx), filling the uncovered pixels with zeros.

    x:      (N, H, W, C) array (NumPy or CuPy)
    shifts: int (N, 2) array of (dy, dx) on the host; the content moves dy rows down and dx columns right:
            out[i, r, c] = x[i, r - dy_i, c - dx_i] where that pixel exists, 0 elsewhere.

    How: pad every image with ``pad = max |shift|`` zeros on each side, then gather, for image i,
    the rows pad - dy_i + (0..H-1) and the columns pad - dx_i + (0..W-1) of the padded image.
    """
    _check_batch(x, "translate")
    shifts = np.asarray(shifts, dtype=np.int64)
    n, height, width, channels = x.shape
    if shifts.shape != (n, 2):
        raise ValueError(f"translate: shifts must have shape (N, 2) = ({n}, 2), got {shifts.shape}")
    pad = int(np.abs(shifts).max()) if n else 0
    if pad == 0:
        return x.copy()
    xp = backends.get_array_module(x)
    padded = xp.zeros((n, height + 2 * pad, width + 2 * pad, channels), dtype=x.dtype)
    padded[:, pad:pad + height, pad:pad + width, :] = x
    first_row = xp.asarray(pad - shifts[:, 0])                 # (N,): top row of the crop window
    first_col = xp.asarray(pad - shifts[:, 1])                 # (N,): left column of the crop window
    rows = first_row[:, None] + xp.arange(height)[None, :]     # (N, H)
    cols = first_col[:, None] + xp.arange(width)[None, :]      # (N, W)
    images = xp.arange(n)[:, None, None]                       # (N, 1, 1)
    # advanced indexing broadcasts (N,1,1), (N,H,1), (N,1,W) to (N,H,W); the channel axis comes along
    return padded[images, rows[:, :, None], cols[:, None, :]]


def random_translate(x, pad: int, rng: np.random.Generator | None = None):
    """Shift each image of x (N, H, W, C) by a random (dy, dx), each uniform in [-pad, pad], zero-filled.

    Equivalent to padding with ``pad`` zeros and cropping an H x W window at a random position.
    rng: the host Generator to draw the N shifts from (default: minidl's seeded host generator).
    pad = 0 returns x itself.
    """
    _check_batch(x, "random_translate")
    if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
        raise ValueError(f"random_translate: pad must be an int >= 0, got {pad!r}")
    if pad == 0:
        return x
    rng = host_rng() if rng is None else rng
    shifts = rng.integers(-pad, pad + 1, size=(len(x), 2))
    return translate(x, shifts)


def hflip(x, flip_mask):
    """Mirror left-right the images i of x (N, H, W, C) where flip_mask[i] is True; the others are copied."""
    _check_batch(x, "hflip")
    flip_mask = np.asarray(flip_mask, dtype=bool)
    if flip_mask.shape != (len(x),):
        raise ValueError(f"hflip: flip_mask must have shape (N,) = ({len(x)},), got {flip_mask.shape}")
    xp = backends.get_array_module(x)
    chosen = xp.asarray(flip_mask)[:, None, None, None]       # (N, 1, 1, 1), broadcast over H, W, C
    return xp.where(chosen, x[:, :, ::-1, :], x)


def random_hflip(x, rng: np.random.Generator | None = None, p: float = 0.5):
    """Mirror each image of x (N, H, W, C) left-right with probability p, independently."""
    _check_batch(x, "random_hflip")
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"random_hflip: p must lie in [0, 1], got {p}")
    rng = host_rng() if rng is None else rng
    return hflip(x, rng.random(len(x)) < p)


class Augment:
    """The training augmentation: random translation by up to ``pad`` pixels, then a random flip.

    ``augment(x, rng=None)`` on a batch (N, H, W, C) returns a new augmented batch; the random
    numbers come from ``rng`` (default: minidl's seeded host generator).
    """

    def __init__(self, pad: int = 4, flip: bool = True, flip_probability: float = 0.5):
        if isinstance(pad, bool) or not isinstance(pad, (int, np.integer)) or pad < 0:
            raise ValueError(f"Augment: pad must be an int >= 0, got {pad!r}")
        if not 0.0 <= flip_probability <= 1.0:
            raise ValueError(f"Augment: flip_probability must lie in [0, 1], got {flip_probability}")
        self.pad, self.flip, self.flip_probability = int(pad), bool(flip), float(flip_probability)

    def __call__(self, x, rng: np.random.Generator | None = None):
        rng = host_rng() if rng is None else rng
        x = random_translate(x, self.pad, rng)
        if self.flip:
            x = random_hflip(x, rng, self.flip_probability)
        return x

    def __repr__(self) -> str:
        return f"Augment(pad={self.pad}, flip={self.flip}, flip_probability={self.flip_probability})"
