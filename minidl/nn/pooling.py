"""Pooling layers: `MaxPool2d`, `AvgPool2d`, `GlobalAvgPool2d` (no parameters)."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class MaxPool2d(Module):
    def __init__(self, kernel_size, stride=None, padding=0):
        super().__init__()
        self.kernel_size, self.stride, self.padding = kernel_size, stride, padding

    def forward(self, x):
        return F.max_pool2d(x, self.kernel_size, self.stride, self.padding)

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, padding={self.padding}"


class AvgPool2d(MaxPool2d):
    def forward(self, x):
        return F.avg_pool2d(x, self.kernel_size, self.stride, self.padding)


class GlobalAvgPool2d(Module):
    """(N, C, H, W) -> (N, C): NIN's classifier, one score per feature map."""

    def forward(self, x):
        return F.global_avg_pool2d(x)
