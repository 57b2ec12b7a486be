"""Elementwise math: exp and log.  d exp(x) = exp(x) dx,  d log(x) = dx / x."""
from __future__ import annotations

from ..backends import get_array_module
from ..engine.function import Function


class Exp(Function):
    def forward(self, x):
        self.y = get_array_module(x).exp(x)
        return self.y

    def backward(self, gy):
        return gy * self.y


class Log(Function):
    def forward(self, x):
        self.x = x
        return get_array_module(x).log(x)

    def backward(self, gy):
        return gy / self.x


def exp(x):
    return Exp()(x)


def log(x):
    return Log()(x)
