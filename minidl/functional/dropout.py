"""Inverted dropout.

In training each element is zeroed with probability p and the survivors are
scaled by 1 / (1 - p), so the expected value is unchanged and evaluation needs
no rescaling:  y = x * m / (1 - p),  m ~ Bernoulli(1 - p).  Backward: gy * m / (1 - p).
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from ..engine.function import Function
from ..kernels.layout import inverse_permutation, memory_order_view
from .. import random as _random


class Dropout(Function):
    def __init__(self, p: float):
        self.p = p

    def forward(self, x):
        xp = get_array_module(x)
        self.scale = x.dtype.type(1.0 / (1.0 - self.p))
        x_mem, self.perm = memory_order_view(x)              # run in memory order, keep x's layout
        self.keep = _random.uniform(x_mem.shape, np.float32, xp) >= self.p
        y = x_mem * self.keep
        y *= self.scale
        return y.transpose(inverse_permutation(self.perm))

    def backward(self, gy):
        gy_mem = gy.transpose(self.perm)                                # gy in the forward's memory order
        gx = gy_mem * self.keep
        gx *= self.scale
        return gx.transpose(inverse_permutation(self.perm))


def dropout(x, p: float = 0.5, training: bool = True):
    """Inverted dropout of tensor x; the identity when not training or p == 0."""
    if not 0.0 <= p < 1.0:
        raise ValueError(f"dropout: p must be in [0, 1), got {p}")
    if not training or p == 0.0:
        return x
    return Dropout(p)(x)
