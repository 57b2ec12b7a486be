"""Data augmentation on the batch's own backend (NumPy or CuPy).

The random choices (a shift and a flip per image) are drawn on the host from
minidl's seeded generator, so they are reproducible and checkpointable; only
these few numbers travel to the GPU, the images never leave it.

* random_translate: pad by ``pad`` zeros and crop back at a random offset, i.e.
  shift every image by its own (dy, dx) in [-pad, pad]^2.
* random_hflip: mirror left-right with probability p.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..random import host_rng


def random_translate(x, pad: int, rng=None):
    """x (N, H, W, C) -> shifted copies, each image by a random (dy, dx) in [-pad, pad]^2, zeros filling in."""
    if pad == 0:
        return x
    rng = host_rng() if rng is None else rng
    xp = backends.get_array_module(x)
    n, h, w, _ = x.shape
    shifts = rng.integers(-pad, pad + 1, size=(n, 2))
    padded = xp.zeros((n, h + 2 * pad, w + 2 * pad, x.shape[3]), dtype=x.dtype)
    padded[:, pad:pad + h, pad:pad + w] = x
    # crop at row pad - dy, column pad - dx: gather with per-image offsets, no loop over images
    rows = xp.asarray(pad - shifts[:, 0])[:, None] + xp.arange(h)[None, :]          # (N, H)
    cols = xp.asarray(pad - shifts[:, 1])[:, None] + xp.arange(w)[None, :]          # (N, W)
    images = xp.arange(n)[:, None, None]
    return padded[images, rows[:, :, None], cols[:, None, :]]


def random_hflip(x, rng=None, p: float = 0.5):
    """Mirror each image of x (N, H, W, C) left-right with probability p."""
    rng = host_rng() if rng is None else rng
    xp = backends.get_array_module(x)
    flip = xp.asarray(rng.random(len(x)) < p)[:, None, None, None]
    return xp.where(flip, x[:, :, ::-1], x)


class Augment:
    """Random translation by up to ``pad`` pixels, then a horizontal flip (if ``flip``)."""

    def __init__(self, pad: int = 4, flip: bool = True):
        if pad < 0:
            raise ValueError(f"Augment: pad must be >= 0, got {pad}")
        self.pad, self.flip = pad, flip

    def __call__(self, x, rng=None):
        rng = host_rng() if rng is None else rng
        x = random_translate(x, self.pad, rng)
        return random_hflip(x, rng) if self.flip else x

    def __repr__(self) -> str:
        return f"Augment(pad={self.pad}, flip={self.flip})"
