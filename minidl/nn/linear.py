"""`Linear`: y = x @ W.T + b, weight (out, in), bias (out,)."""
from __future__ import annotations

from .. import functional as F
from . import init
from ._factory import new_parameter
from .module import Module


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, init_std: float | None = None):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = new_parameter(out_features, in_features)
        self.bias = new_parameter(out_features) if bias else None
        if init_std is None:
            init.kaiming_normal_(self.weight)
        else:
            init.normal_(self.weight, 0.0, init_std)

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
