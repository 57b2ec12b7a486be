"""Memory layout: logical NCHW tensors stored channels-last (NHWC) in memory.

minidl's tensors are indexed (N, C, H, W), as in PyTorch. In memory, though,
the conv and pool kernels keep them *channels-last*: the C values of one
pixel sit next to each other. An array ``a`` of shape (N, H, W, C) viewed as
``a.transpose(0, 3, 1, 2)`` is such a tensor; the view costs nothing.

Why channels-last? At every pixel a convolution takes a dot product over
channels. With the channels contiguous, im2col copies whole runs of C
numbers, a 1x1 convolution is *one* matrix product
(N*H*W, C) @ (C, C_out) with no copy at all, and the output comes out of that
product already channels-last for the next layer.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module


def to_nhwc(x):
    """(N, C, H, W) array -> (N, H, W, C) C-contiguous array (a free view if x is channels-last)."""
    xh = x.transpose(0, 2, 3, 1)
    if xh.flags.c_contiguous:
        return xh
    return get_array_module(x).ascontiguousarray(xh)


def from_nhwc(y):
    """(N, H, W, C) array -> (N, C, H, W) view of the same memory."""
    return y.transpose(0, 3, 1, 2)


def is_channels_last(x) -> bool:
    """True when the (N, C, H, W) array ``x`` is stored channels-last."""
    return x.ndim == 4 and x.transpose(0, 2, 3, 1).flags.c_contiguous


def physical_order(x) -> tuple:
    """The axes of ``x`` from slowest to fastest in memory (for a C-contiguous array: 0, 1, ..., ndim-1)."""
    return tuple(int(a) for a in np.argsort([-abs(s) for s in x.strides], kind="stable"))


def empty_like_layout(x, dtype=None):
    """An uninitialised array shaped like ``x`` with the same memory order (NumPy and CuPy alike)."""
    xp = get_array_module(x)
    perm = physical_order(x)
    dense = xp.empty([x.shape[a] for a in perm], dtype=dtype or x.dtype)
    return dense.transpose(inverse_permutation(perm))


def memory_order_view(x):
    """(``x`` with its axes permuted into memory order, that permutation ``perm``).

    ``view.transpose(inverse_permutation(perm))`` is ``x`` again, and
    ``other.transpose(perm)`` puts a second array (e.g. the gradient) in the same order.

    For a dense array the view is C-contiguous, whatever its logical layout. An
    elementwise op run on that view reads and writes memory in order and its
    result has the same layout as ``x`` once the permutation is undone. NumPy
    keeps an operand's layout by itself; CuPy makes every result C-contiguous
    in *logical* order, which for a channels-last tensor means strided,
    uncoalesced reads and a layout the next convolution must copy back.
    """
    perm = physical_order(x)
    return x.transpose(perm), perm


def inverse_permutation(perm) -> tuple:
    """The permutation that undoes ``perm``: a.transpose(perm).transpose(inverse_permutation(perm)) is a."""
    return tuple(int(a) for a in np.argsort(perm))
