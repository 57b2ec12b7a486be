"""`BatchNorm2d`: per-channel normalization with learned scale and shift.

Buffers ``running_mean`` and ``running_var`` follow the batch statistics in
train mode (momentum 0.1) and replace them in eval mode.
"""
from __future__ import annotations


from .. import functional as F
from . import init
from ._factory import new_buffer, new_parameter
from .module import Module


class BatchNorm2d(Module):
    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1):
        super().__init__()
        self.num_features, self.eps, self.momentum = num_features, eps, momentum
        self.weight = init.ones_(new_parameter(num_features))
        self.bias = new_parameter(num_features)
        self.register_buffer("running_mean", new_buffer((num_features,), 0.0))
        self.register_buffer("running_var", new_buffer((num_features,), 1.0))

    def forward(self, x, activation=None):
        """``activation="relu"``: relu(batch norm of x) in the same passes (MLPConv asks for it)."""
        return F.batch_norm2d(x, self.running_mean, self.running_var, self.weight, self.bias,
                              training=self.training, momentum=self.momentum, eps=self.eps, activation=activation)

    def extra_repr(self) -> str:
        return f"{self.num_features}, eps={self.eps}, momentum={self.momentum}"
