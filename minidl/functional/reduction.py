"""Reductions over axes: sum, mean and max.

The backward of a reduction spreads the gradient back over the reduced axes:
``sum`` copies it to every element, ``mean`` divides it by the count, and
``max`` sends it to the element(s) that held the maximum (split evenly on ties).
"""
from __future__ import annotations

import builtins

from ..backends import get_array_module
from ..engine.function import Function


def _normalize_axis(axis, ndim, op):
    if axis is None:
        return tuple(range(ndim))
    axes = (axis,) if isinstance(axis, int) else tuple(axis)
    out = []
    for a in axes:
        if not -ndim <= a < ndim:
            raise ValueError(f"{op}: axis {a} is out of range for a tensor with {ndim} dimensions")
        out.append(a % ndim)
    return tuple(sorted(set(out)))


def _expand(g, shape, axes):
    """Re-insert the reduced axes (size 1) so that ``g`` broadcasts against the input."""
    for a in axes:
        g = get_array_module(g).expand_dims(g, a)
    return g


class Sum(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.shape = x.shape
        self.axes = _normalize_axis(self.axis, x.ndim, "sum")
        return x.sum(axis=self.axes, keepdims=self.keepdims)

    def backward(self, gy):
        xp = get_array_module(gy)
        g = gy if self.keepdims else _expand(gy, self.shape, self.axes)
        return xp.broadcast_to(g, self.shape).copy()


class Mean(Sum):
    def forward(self, x):
        y = super().forward(x)
        self.count = builtins.max(1, x.size // builtins.max(1, y.size))
        return y / x.dtype.type(self.count)

    def backward(self, gy):
        return super().backward(gy / gy.dtype.type(self.count))


class Max(Function):
    def __init__(self, axis=None, keepdims=False):
        self.axis, self.keepdims = axis, keepdims

    def forward(self, x):
        self.x = x
        self.axes = _normalize_axis(self.axis, x.ndim, "max")
        if x.size == 0:
            raise ValueError(f"max: cannot reduce an empty tensor of shape {tuple(x.shape)}")
        self.y = x.max(axis=self.axes, keepdims=True)
        return self.y if self.keepdims else self.y.reshape([n for i, n in enumerate(x.shape) if i not in self.axes])

    def backward(self, gy):
        g = gy if self.keepdims else _expand(gy, self.x.shape, self.axes)
        mask = (self.x == self.y)
        ties = mask.sum(axis=self.axes, keepdims=True)
        return (mask * (g / ties)).astype(self.x.dtype)


def sum(x, axis=None, keepdims=False):
    return Sum(axis, keepdims)(x)


def mean(x, axis=None, keepdims=False):
    return Mean(axis, keepdims)(x)


def max(x, axis=None, keepdims=False):
    return Max(axis, keepdims)(x)
