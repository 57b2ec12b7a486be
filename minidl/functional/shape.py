"""Shape ops: reshape, transpose, indexing, concatenation, flatten.

They move numbers around without changing them, so each backward moves the
gradient back: reshape it back, transpose it back with the inverse
permutation, scatter it into the indexed positions, split it at the seams.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from ..engine.function import Function
from ..engine.tensor import Tensor, as_tensor
from ..kernels.layout import inverse_permutation


class Reshape(Function):
    def __init__(self, shape):
        self.shape = tuple(int(s) for s in shape)

    def forward(self, x):
        self.input_shape = x.shape
        try:
            return x.reshape(self.shape)
        except ValueError:
            raise ValueError(
                f"reshape: cannot reshape a tensor of shape {tuple(x.shape)} ({x.size} elements) into {self.shape}"
            ) from None

    def backward(self, gy):
        return gy.reshape(self.input_shape)


class Transpose(Function):
    def __init__(self, axes=None):
        self.axes = None if axes is None else tuple(int(a) for a in axes)

    def forward(self, x):
        axes = self.axes if self.axes is not None else tuple(reversed(range(x.ndim)))
        if any(not -x.ndim <= a < x.ndim for a in axes) or sorted(a % x.ndim for a in axes) != list(range(x.ndim)):
            raise ValueError(f"transpose: axes {axes} are not a permutation of the {x.ndim} axes of {tuple(x.shape)}")
        self.perm = tuple(a % x.ndim for a in axes)
        return x.transpose(self.perm)

    def backward(self, gy):
        return gy.transpose(inverse_permutation(self.perm))


class GetItem(Function):
    """y = x[index]; the gradient is scattered back, adding where an index repeats."""

    def __init__(self, index):
        self.index = index

    def forward(self, x):
        self.input_shape, self.dtype = x.shape, x.dtype
        return x[self.index]

    def backward(self, gy):
        xp = get_array_module(gy)
        gx = xp.zeros(self.input_shape, dtype=gy.dtype)
        if _is_basic_index(self.index):
            gx[self.index] = gy          # basic slicing never repeats an element
        else:
            xp.add.at(gx, self.index, gy)    # repeated indices accumulate (NumPy and CuPy alike)
        return gx


def _is_basic_index(index) -> bool:
    items = index if isinstance(index, tuple) else (index,)
    return all(isinstance(i, (int, np.integer, slice)) or i is None or i is Ellipsis for i in items)


class Concatenate(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, *xs):
        xp = get_array_module(*xs)
        shapes = ", ".join(str(tuple(x.shape)) for x in xs)
        if len({x.ndim for x in xs}) != 1:
            raise ValueError(f"concatenate: all tensors need the same number of dimensions, got shapes {shapes}")
        if not -xs[0].ndim <= self.axis < xs[0].ndim:
            raise ValueError(f"concatenate: axis {self.axis} is out of range for shapes {shapes}")
        self.sizes = [x.shape[self.axis] for x in xs]
        try:
            return xp.concatenate(xs, axis=self.axis)
        except ValueError:
            shapes = ", ".join(str(tuple(x.shape)) for x in xs)
            raise ValueError(f"concatenate: shapes {shapes} do not match outside axis {self.axis}") from None

    def backward(self, gy):
        xp = get_array_module(gy)
        bounds = np.cumsum(self.sizes)[:-1]
        return tuple(xp.split(gy, bounds, axis=self.axis))


def reshape(x, shape):
    return Reshape(shape)(x)


def transpose(x, axes=None):
    return Transpose(axes)(x)


def getitem(x, index):
    if isinstance(index, Tensor):
        index = index.data
    elif isinstance(index, tuple):
        index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
    return GetItem(index)(x)


def concatenate(tensors, axis=0):
    tensors = [as_tensor(t) for t in tensors]
    if not tensors:
        raise ValueError("concatenate: needs at least one tensor")
    return Concatenate(axis)(*tensors)


def flatten(x, start_dim=1):
    """Merge all axes from ``start_dim`` on: (N, C, H, W) -> (N, C*H*W)."""
    shape = x.shape[:start_dim] + (int(np.prod(x.shape[start_dim:])),)
    return reshape(x, shape)
