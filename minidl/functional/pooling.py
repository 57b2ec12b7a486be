"""Pooling: max, average and global average pooling over H and W.

Shapes: x (N, C, H, W) -> (N, C, Ho, Wo), Ho = floor((H + 2p - k) / s) + 1;
global_avg_pool2d: (N, C, H, W) -> (N, C),  y[n, c] = mean_{h,w} x[n, c, h, w].

Global average pooling is NIN's classifier: the last mlpconv layer makes one
map per class and GAP turns each map into that class's score.
"""
from __future__ import annotations

from ..engine.function import Function
from ..kernels import pooling as kernels
from ..kernels.im2col import conv_output_size
from ..kernels.layout import from_nhwc, to_nhwc
from ._utils import pair, shape_str


class MaxPool2d(Function):
    def __init__(self, kernel, stride, padding):
        self.args = (*kernel, *stride, *padding)

    def forward(self, x):
        x_nhwc = to_nhwc(x)
        self.x_shape = x_nhwc.shape
        y, self.argmax = kernels.max_pool_forward(x_nhwc, *self.args, with_argmax=self.requires_grad)
        return from_nhwc(y)

    def backward(self, gy):
        return from_nhwc(kernels.max_pool_backward(to_nhwc(gy), self.argmax, self.x_shape, *self.args))


class AvgPool2d(Function):
    def __init__(self, kernel, stride, padding):
        self.args = (*kernel, *stride, *padding)

    def forward(self, x):
        x_nhwc = to_nhwc(x)
        self.x_shape = x_nhwc.shape
        return from_nhwc(kernels.avg_pool_forward(x_nhwc, *self.args))

    def backward(self, gy):
        return from_nhwc(kernels.avg_pool_backward(to_nhwc(gy), self.x_shape, *self.args))


class GlobalAvgPool2d(Function):
    def forward(self, x):
        x_nhwc = to_nhwc(x)
        self.x_shape = x_nhwc.shape
        return kernels.global_avg_pool_forward(x_nhwc)

    def backward(self, gy):
        return from_nhwc(kernels.global_avg_pool_backward(gy, self.x_shape))


def _pool_args(op, x, kernel_size, stride, padding):
    kernel = pair(kernel_size, "kernel_size", op)
    stride = kernel if stride is None else pair(stride, "stride", op)
    padding = pair(padding, "padding", op)
    if x.ndim != 4:
        raise ValueError(f"{op}: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    if min(kernel) < 1 or min(stride) < 1 or min(padding) < 0:
        raise ValueError(f"{op}: need kernel_size >= 1, stride >= 1, padding >= 0; got {kernel}, {stride}, {padding}")
    if padding[0] > kernel[0] // 2 or padding[1] > kernel[1] // 2:
        raise ValueError(f"{op}: padding {padding} must be at most half the kernel size {kernel}")
    h, w = x.shape[2], x.shape[3]
    if conv_output_size(h, kernel[0], stride[0], padding[0]) < 1 or conv_output_size(w, kernel[1], stride[1], padding[1]) < 1:
        raise ValueError(f"{op}: kernel {kernel} is larger than the padded input {h + 2 * padding[0]}x{w + 2 * padding[1]} (input {shape_str(x.shape)})")
    return kernel, stride, padding


def max_pool2d(x, kernel_size, stride=None, padding=0):
    """Max over each kernel_size window (stride defaults to kernel_size); padded cells never win."""
    return MaxPool2d(*_pool_args("max_pool2d", x, kernel_size, stride, padding))(x)


def avg_pool2d(x, kernel_size, stride=None, padding=0):
    """Mean over each window; padded zeros are counted (PyTorch's count_include_pad=True)."""
    return AvgPool2d(*_pool_args("avg_pool2d", x, kernel_size, stride, padding))(x)


def global_avg_pool2d(x):
    """(N, C, H, W) -> (N, C): the mean of every feature map."""
    if x.ndim != 4:
        raise ValueError(f"global_avg_pool2d: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    return GlobalAvgPool2d()(x)
