"""Pooling kernels on channels-last (N, H, W, C) arrays.

Like im2col, they loop over the kh*kw offsets of the pooling window: at
offset (i, j) one strided slice holds what every window sees there.

Max pooling keeps, per output cell, the largest value and *which offset* held
it (``argmax``, an int8 in [0, kh*kw)). The backward sends each output's
gradient to that one input cell; with overlapping windows (NIN's 3x3 stride 2)
one input cell can win several windows and receives the sum. Padding is
filled with -inf, so a padded cell never wins.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from .im2col import conv_output_size, pad_nhwc, window


def max_pool_forward(x, kh, kw, sh, sw, ph, pw):
    """(N, H, W, C) -> (max (N, Ho, Wo, C), argmax int8 (N, Ho, Wo, C))."""
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    x_padded = pad_nhwc(x, ph, pw, value=-np.inf)
    out = window(x_padded, 0, 0, out_h, out_w, sh, sw).copy()
    argmax = xp.zeros(out.shape, dtype=np.int8)
    better = xp.empty(out.shape, dtype=bool)
    for k in range(1, kh * kw):
        candidate = window(x_padded, k // kw, k % kw, out_h, out_w, sh, sw)
        xp.greater(candidate, out, out=better)      # strict: the first maximum wins ties
        xp.copyto(out, candidate, where=better)
        xp.copyto(argmax, np.int8(k), where=better)
    return out, argmax


def max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw):
    """Route each output gradient (N, Ho, Wo, C) to the input cell that won its window."""
    xp = get_array_module(gy)
    n, h, w, c = input_shape
    _, out_h, out_w, _ = gy.shape
    gx_padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=gy.dtype)
    zero = gy.dtype.type(0)
    for k in range(kh * kw):
        window(gx_padded, k // kw, k % kw, out_h, out_w, sh, sw)[...] += xp.where(argmax == k, gy, zero)
    return _crop(gx_padded, ph, pw, h, w)


def avg_pool_forward(x, kh, kw, sh, sw, ph, pw):
    """Mean of each window (padded zeros count, as PyTorch's count_include_pad=True)."""
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    x_padded = pad_nhwc(x, ph, pw)
    out = window(x_padded, 0, 0, out_h, out_w, sh, sw).copy()
    for k in range(1, kh * kw):
        out += window(x_padded, k // kw, k % kw, out_h, out_w, sh, sw)
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


def avg_pool_backward(gy, input_shape, kh, kw, sh, sw, ph, pw):
    xp = get_array_module(gy)
    n, h, w, c = input_shape
    _, out_h, out_w, _ = gy.shape
    share = gy * gy.dtype.type(1.0 / (kh * kw))
    gx_padded = xp.zeros((n, h + 2 * ph, w + 2 * pw, c), dtype=gy.dtype)
    for k in range(kh * kw):
        window(gx_padded, k // kw, k % kw, out_h, out_w, sh, sw)[...] += share
    return _crop(gx_padded, ph, pw, h, w)


def _crop(x_padded, ph, pw, h, w):
    if ph == 0 and pw == 0:
        return x_padded
    return get_array_module(x_padded).ascontiguousarray(x_padded[:, ph:ph + h, pw:pw + w, :])
