"""`Linear`: y = x @ W.T + b, weight (out, in), bias (out,)."""
from __future__ import annotations

from .. import functional as F
from .init import check_scheme, init_layer_
from ._factory import new_parameter
from .module import Module


class Linear(Module):
    def __init__(self, in_features: int, out_features: int, bias: bool = True, init="he"):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = new_parameter(out_features, in_features)
        self.bias = new_parameter(out_features) if bias else None
        self.reset_parameters(init)

    def reset_parameters(self, scheme="he") -> None:
        """Fill weight and bias by ``scheme``: "he", "uniform" or a Gaussian std (see :mod:`minidl.nn.init`)."""
        init_layer_(self.weight, self.bias, check_scheme(scheme, "Linear"))

    def forward(self, x):
        return F.linear(x, self.weight, self.bias)

    def extra_repr(self) -> str:
        return f"in_features={self.in_features}, out_features={self.out_features}, bias={self.bias is not None}"
