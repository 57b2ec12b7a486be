"""Fully connected layer:  y = x @ W.T + b,  x (N, in), W (out, in), b (out,) -> y (N, out).

Backward: dx = dy @ W,  dW = dy.T @ x,  db = sum_n dy.
"""
from __future__ import annotations

from ..engine.function import Function
from ._utils import shape_str


class Linear(Function):
    def forward(self, x, weight, bias=None):
        self.x, self.weight = x, weight
        y = x @ weight.T
        if bias is not None:
            y += bias
        return y

    def backward(self, gy):
        gx = gy @ self.weight if self.needs_grad[0] else None
        gw = gy.T @ self.x if self.needs_grad[1] else None
        gb = gy.sum(axis=0) if len(self.needs_grad) > 2 and self.needs_grad[2] else None
        return (gx, gw, gb)[:len(self.needs_grad)]


def linear(x, weight, bias=None):
    if x.ndim != 2 or weight.ndim != 2:
        raise ValueError(f"linear: expected x (N, in) and weight (out, in), got x {shape_str(x.shape)}, weight {shape_str(weight.shape)}")
    if x.shape[1] != weight.shape[1]:
        raise ValueError(
            f"linear: x has {x.shape[1]} features but weight expects {weight.shape[1]}: "
            f"x {shape_str(x.shape)}, weight {shape_str(weight.shape)}"
        )
    if bias is not None and tuple(bias.shape) != (weight.shape[0],):
        raise ValueError(f"linear: bias must have shape ({weight.shape[0]},), got {shape_str(bias.shape)}")
    return Linear()(x, weight) if bias is None else Linear()(x, weight, bias)
