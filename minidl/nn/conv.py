"""`Conv2d`: a learned 2-D convolution, weight (O, C, kh, kw) and bias (O,).

x (N, C, H, W) -> y (N, O, Ho, Wo); see :func:`minidl.functional.conv2d`.
A 1x1 Conv2d is NIN's cross-channel parametric pooling: a fully connected
layer applied to the channel vector of every pixel.
"""
from __future__ import annotations

from .. import functional as F
from ..functional._utils import pair
from .init import check_scheme, init_layer_
from ._factory import new_parameter
from .module import Module


class Conv2d(Module):
    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, padding=0,
                 bias: bool = True, init="he"):
        super().__init__()
        kh, kw = pair(kernel_size, "kernel_size", "Conv2d")
        if min(in_channels, out_channels, kh, kw) < 1:
            raise ValueError(f"Conv2d: channels and kernel size must be >= 1, got in={in_channels}, out={out_channels}, kernel={kernel_size}")
        self.in_channels, self.out_channels = in_channels, out_channels
        self.kernel_size, self.stride, self.padding = (kh, kw), stride, padding
        self.weight = new_parameter(out_channels, in_channels, kh, kw)
        self.bias = new_parameter(out_channels) if bias else None
        self.reset_parameters(init)

    def reset_parameters(self, scheme="he") -> None:
        """Fill weight and bias by ``scheme``: "he", "uniform" or a Gaussian std (see :mod:`minidl.nn.init`)."""
        init_layer_(self.weight, self.bias, check_scheme(scheme, "Conv2d"))

    def forward(self, x, activation=None):
        """``activation="relu"``: relu(conv(x)) in one pass (what :class:`MLPConv` asks for)."""
        return F.conv2d(x, self.weight, self.bias, self.stride, self.padding, activation=activation)

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, "
                f"stride={self.stride}, padding={self.padding}, bias={self.bias is not None}")
