"""2-D convolution (cross-correlation, as in every deep learning library).

    y[n, o, h, w] = b[o] + sum_{c,i,j} W[o, c, i, j] * x_pad[n, c, h*s + i, w*s + j]

Shapes: x (N, C, H, W), weight (O, C, kh, kw), bias (O,) -> y (N, O, Ho, Wo)
with Ho = floor((H + 2p - kh) / s) + 1.

How it is computed (channels-last inside, see minidl/kernels/layout.py):

* general kernel: im2col turns x into cols (N*Ho*Wo, kh*kw*C); then
  ``y = cols @ W_mat.T`` is one matrix product, with W_mat (O, kh*kw*C).
  Backward: ``dW_mat = dy.T @ cols``, ``dcols = dy @ W_mat``, then col2im.
* 1x1 kernel, stride 1, no padding ("cross-channel parametric pooling" in
  NIN): every pixel's channel vector goes through the same fully connected
  layer, so ``y = x_mat @ W.T`` with x_mat (N*H*W, C), no im2col at all.
"""
from __future__ import annotations

from ..engine.function import Function
from ..kernels.im2col import col2im, conv_output_size, im2col
from ..kernels.layout import from_nhwc, to_nhwc
from ._utils import pair, shape_str


class Conv2d(Function):
    def __init__(self, stride=(1, 1), padding=(0, 0)):
        self.stride, self.padding = stride, padding

    def forward(self, x, weight, bias=None):
        n, c, h, w = x.shape
        o, _, kh, kw = weight.shape
        (sh, sw), (ph, pw) = self.stride, self.padding
        out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
        self.x_shape, self.weight = (n, h, w, c), weight
        self.pointwise = (kh, kw, sh, sw, ph, pw) == (1, 1, 1, 1, 0, 0)

        x_nhwc = to_nhwc(x)
        if self.pointwise:
            self.cols = x_nhwc.reshape(n * h * w, c)                       # no copy: already a matrix
        else:
            self.cols = im2col(x_nhwc, kh, kw, sh, sw, ph, pw).reshape(n * out_h * out_w, kh * kw * c)
        self.w_mat = weight.transpose(0, 2, 3, 1).reshape(o, kh * kw * c)    # (O, kh*kw*C), (i, j, c) order
        y = self.cols @ self.w_mat.T                                        # (N*Ho*Wo, O)
        if bias is not None:
            y += bias
        return from_nhwc(y.reshape(n, out_h, out_w, o))

    def backward(self, gy):
        o, c, kh, kw = self.weight.shape
        gy_mat = to_nhwc(gy).reshape(-1, o)                                 # (N*Ho*Wo, O)
        gx = gw = gb = None
        if self.needs_grad[1]:
            gw = (gy_mat.T @ self.cols).reshape(o, kh, kw, c).transpose(0, 3, 1, 2)
            gw = gw.copy()                                                  # own, C-contiguous memory
        if len(self.needs_grad) > 2 and self.needs_grad[2]:
            gb = gy_mat.sum(axis=0)
        if self.needs_grad[0]:
            gcols = gy_mat @ self.w_mat                                     # (N*Ho*Wo, kh*kw*C)
            n, h, w, _ = self.x_shape
            if self.pointwise:
                gx_nhwc = gcols.reshape(n, h, w, c)
            else:
                _, out_h, out_w, _ = to_nhwc(gy).shape
                (sh, sw), (ph, pw) = self.stride, self.padding
                gx_nhwc = col2im(gcols.reshape(n, out_h, out_w, kh, kw, c), self.x_shape, sh, sw, ph, pw)
            gx = from_nhwc(gx_nhwc)
        return (gx, gw, gb)[:len(self.needs_grad)]


def conv2d(x, weight, bias=None, stride=1, padding=0):
    """Convolve x (N, C, H, W) with weight (O, C, kh, kw); see the module docstring."""
    stride, padding = pair(stride, "stride", "conv2d"), pair(padding, "padding", "conv2d")
    _check_conv_args(x, weight, bias, stride, padding)
    args = (x, weight) if bias is None else (x, weight, bias)
    return Conv2d(stride, padding)(*args)


def _check_conv_args(x, weight, bias, stride, padding) -> None:
    if x.ndim != 4:
        raise ValueError(f"conv2d: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    if weight.ndim != 4:
        raise ValueError(f"conv2d: expected weight of shape (O, C, kh, kw), got {shape_str(weight.shape)}")
    n, c, h, w = x.shape
    o, wc, kh, kw = weight.shape
    if wc != c:
        raise ValueError(
            f"conv2d: input has {c} channels but weight expects {wc}: "
            f"input {shape_str(x.shape)}, weight {shape_str(weight.shape)}"
        )
    if min(stride) < 1:
        raise ValueError(f"conv2d: stride must be >= 1, got {stride}")
    if min(padding) < 0:
        raise ValueError(f"conv2d: padding must be >= 0, got {padding}")
    if kh > h + 2 * padding[0] or kw > w + 2 * padding[1]:
        raise ValueError(
            f"conv2d: kernel {kh}x{kw} is larger than the padded input {h + 2 * padding[0]}x{w + 2 * padding[1]} "
            f"(input {shape_str(x.shape)}, padding {padding})"
        )
    if bias is not None and tuple(bias.shape) != (o,):
        raise ValueError(f"conv2d: bias must have shape ({o},) for {o} output channels, got {shape_str(bias.shape)}")
    if x.dtype != weight.dtype:
        raise TypeError(f"conv2d: input dtype {x.dtype} differs from weight dtype {weight.dtype}")
