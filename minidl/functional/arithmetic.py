"""Arithmetic: + - * / neg, pow, matmul and dtype casts, with broadcasting.

For ``z = x * y`` the chain rule gives ``dL/dx = dL/dz * y``; when x was
broadcast, its gradient is summed back to x's shape (:func:`unbroadcast`).
"""
from __future__ import annotations

import numpy as np

from ..engine.function import Function
from ..engine.tensor import Tensor, as_tensor
from ..backends import get_array_module
from ._utils import unbroadcast


def _pair_of_tensors(a, b):
    """Lift Python numbers to tensors of the other operand's dtype and backend."""
    if isinstance(a, Tensor):
        return a, as_tensor(b, like=a)
    if isinstance(b, Tensor):
        return as_tensor(a, like=b), b
    return as_tensor(a), as_tensor(b)


class Add(Function):
    def forward(self, x, y):
        self.shapes = x.shape, y.shape
        return x + y

    def backward(self, gz):
        return unbroadcast(gz, self.shapes[0]), unbroadcast(gz, self.shapes[1])


class Sub(Function):
    def forward(self, x, y):
        self.shapes = x.shape, y.shape
        return x - y

    def backward(self, gz):
        return unbroadcast(gz, self.shapes[0]), unbroadcast(-gz, self.shapes[1])


class Mul(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x * y

    def backward(self, gz):
        gx = unbroadcast(gz * self.y, self.x.shape) if self.needs_grad[0] else None
        gy = unbroadcast(gz * self.x, self.y.shape) if self.needs_grad[1] else None
        return gx, gy


class Div(Function):
    def forward(self, x, y):
        self.x, self.y = x, y
        return x / y

    def backward(self, gz):
        gx = unbroadcast(gz / self.y, self.x.shape) if self.needs_grad[0] else None
        gy = unbroadcast(-gz * self.x / (self.y * self.y), self.y.shape) if self.needs_grad[1] else None
        return gx, gy


class Neg(Function):
    def forward(self, x):
        return -x

    def backward(self, gz):
        return -gz


class Pow(Function):
    """x ** c for a constant exponent c:  d/dx = c * x ** (c - 1)."""

    def __init__(self, exponent: float):
        self.exponent = exponent

    def forward(self, x):
        self.x = x
        return x ** self.exponent

    def backward(self, gz):
        c = self.exponent
        if c == 0:                       # x ** 0 is constant (and 0 * 0 ** -1 would give nan at x = 0)
            return get_array_module(gz).zeros_like(gz)
        return gz * (c * self.x ** (c - 1))


class MatMul(Function):
    """z = x @ y (2-D or batched, NumPy's matmul rules):  dx = gz @ y^T,  dy = x^T @ gz."""

    def forward(self, x, y):
        if x.ndim == 0 or y.ndim == 0:
            raise ValueError("matmul: operands must have at least one dimension")
        if x.shape[-1] != y.shape[-2 if y.ndim > 1 else 0]:
            raise ValueError(
                f"matmul: inner dimensions differ: x {tuple(x.shape)} @ y {tuple(y.shape)} "
                f"({x.shape[-1]} vs {y.shape[-2 if y.ndim > 1 else 0]})"
            )
        self.x, self.y = x, y
        try:
            return x @ y
        except ValueError:
            raise ValueError(f"matmul: batch dimensions do not broadcast: x {tuple(x.shape)} @ y {tuple(y.shape)}") from None

    def backward(self, gz):
        xp = get_array_module(gz)
        x, y = self.x, self.y
        # Treat 1-D operands as matrices, as matmul does, then undo.
        x2 = x[None, :] if x.ndim == 1 else x
        y2 = y[:, None] if y.ndim == 1 else y
        batch = np.broadcast_shapes(x2.shape[:-2], y2.shape[:-2])
        g2 = gz.reshape(batch + (x2.shape[-2], y2.shape[-1]))     # the gradient of x2 @ y2
        gx = gy = None
        if self.needs_grad[0]:
            gx = unbroadcast(g2 @ xp.swapaxes(y2, -1, -2), x2.shape).reshape(x.shape)
        if self.needs_grad[1]:
            gy = unbroadcast(xp.swapaxes(x2, -1, -2) @ g2, y2.shape).reshape(y.shape)
        return gx, gy


class AsType(Function):
    def __init__(self, dtype):
        self.dtype = dtype

    def forward(self, x):
        self.source = x.dtype
        return x.astype(self.dtype)

    def backward(self, gz):
        return gz.astype(self.source)


def add(x, y):
    return Add()(*_pair_of_tensors(x, y))


def sub(x, y):
    return Sub()(*_pair_of_tensors(x, y))


def mul(x, y):
    return Mul()(*_pair_of_tensors(x, y))


def div(x, y):
    return Div()(*_pair_of_tensors(x, y))


def neg(x):
    return Neg()(x)


def pow(x, exponent):
    if isinstance(exponent, Tensor):
        raise TypeError("pow: the exponent must be a Python number (x ** Tensor is not supported)")
    return Pow(exponent)(x)


def matmul(x, y):
    return MatMul()(*_pair_of_tensors(x, y))


def astype(x, dtype):
    return AsType(dtype)(x)
