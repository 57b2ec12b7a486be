"""im2col and col2im for channels-last (NHWC) images.

A convolution with a kh x kw kernel looks, at each output pixel, at a
kh x kw x C patch of the (padded) input. im2col copies every patch into one
row of a matrix::

    cols[n, oh, ow, i, j, c] = x_padded[n, oh*sh + i, ow*sw + j, c]

so that the convolution becomes one matrix product:
(N*Ho*Wo, kh*kw*C) @ (kh*kw*C, O).

No Python loop over pixels or images: all patches at once are one *strided
view* of the padded input (:func:`patches`), and im2col is a single copy of
that view. col2im is the adjoint (the backward). Patches overlap, so it cannot
write through a view; it loops over the kh*kw kernel offsets (i, j), where
``x_padded[:, i:i+sh*Ho:sh, j:j+sw*Wo:sw, :]`` is the (N, Ho, Wo, C) block
that every patch sees at that offset, and *adds* each offset's block back
into place: a pixel seen by several patches receives the sum, a few images
at a time so that the sums stay in the cache. On CuPy, col2im
is one fused CUDA kernel instead (minidl/kernels/cuda.py): each GPU thread
gathers the sum for one input cell.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from . import cuda
from .blocking import batch_blocks
from .threads import run_blocks


def conv_output_size(size: int, kernel: int, stride: int, padding: int) -> int:
    """floor((size + 2*padding - kernel) / stride) + 1, as in PyTorch."""
    return (size + 2 * padding - kernel) // stride + 1


def pad_nhwc(x, ph: int, pw: int, value=0):
    """Pad H and W of an (N, H, W, C) array with ``value``."""
    if ph == 0 and pw == 0:
        return x
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out = xp.full((n, h + 2 * ph, w + 2 * pw, c), value, dtype=x.dtype)
    out[:, ph:ph + h, pw:pw + w, :] = x
    return out


def window(x_padded, i: int, j: int, out_h: int, out_w: int, sh: int, sw: int):
    """The (N, Ho, Wo, C) strided view of what every window sees at kernel offset (i, j)."""
    return x_padded[:, i:i + sh * (out_h - 1) + 1:sh, j:j + sw * (out_w - 1) + 1:sw, :]


def patches(x_padded, kh: int, kw: int, sh: int, sw: int, out_h: int, out_w: int):
    """A read-only (N, Ho, Wo, kh, kw, C) *view* of every patch of a padded (N, H, W, C) array; no copy.

    Strides say how many bytes to skip to move one step along an axis. Moving to
    the next output column skips sw input columns, and moving to the next kernel
    column skips one input column, so both axes reuse the input's own strides.
    """
    xp = get_array_module(x_padded)
    n, _, _, c = x_padded.shape
    s_n, s_h, s_w, s_c = x_padded.strides
    return xp.lib.stride_tricks.as_strided(
        x_padded, shape=(n, out_h, out_w, kh, kw, c),
        strides=(s_n, s_h * sh, s_w * sw, s_h, s_w, s_c))


def im2col(x, kh: int, kw: int, sh: int = 1, sw: int = 1, ph: int = 0, pw: int = 0, out=None):
    """(N, H, W, C) -> cols (N, Ho, Wo, kh, kw, C); reshape to (N*Ho*Wo, kh*kw*C) for the product.

    The copy reads runs of kw*C contiguous numbers (one patch row) at a time.
    ``out``: an optional preallocated buffer of at least that many elements, reused across calls; or a
    row-major matrix (N*Ho*Wo, width >= kh*kw*C) whose first kh*kw*C columns receive the patches
    (the result is then a view of those columns).
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    x_padded = xp.ascontiguousarray(pad_nhwc(x, ph, pw))
    shape = (n, out_h, out_w, kh, kw, c)
    if out is None:
        cols = xp.empty(shape, dtype=x.dtype)
    elif out.ndim == 2:
        cols = _leading_columns(out, shape)
    else:
        cols = out.reshape(-1)[:n * out_h * out_w * kh * kw * c].reshape(shape)
    view = patches(x_padded, kh, kw, sh, sw, out_h, out_w)

    def copy(block):
        cols[block] = view[block]
    run_blocks(copy, batch_blocks(xp, n, cols[0].nbytes))       # images shared between the cores
    return cols


def _leading_columns(matrix, shape):
    """The (N, Ho, Wo, kh, kw, C) view of the first kh*kw*C columns of a row-major matrix (N*Ho*Wo, width)."""
    n, out_h, out_w, kh, kw, c = shape
    rows, width = matrix.shape
    if rows != n * out_h * out_w or width < kh * kw * c or matrix.strides[1] != matrix.itemsize:
        raise ValueError(f"im2col: out must be a row-major matrix of {n * out_h * out_w} rows and at least "
                         f"{kh * kw * c} columns, got shape {matrix.shape} with strides {matrix.strides}")
    row, item = matrix.strides
    return get_array_module(matrix).lib.stride_tricks.as_strided(
        matrix, shape=shape, strides=(out_h * out_w * row, out_w * row, row, kw * c * item, c * item, item))


def col2im(cols, input_shape, sh: int = 1, sw: int = 1, ph: int = 0, pw: int = 0, out=None):
    """cols (N, Ho, Wo, kh, kw, C) -> (N, H, W, C), summing overlapping patches (adjoint of im2col).

    ``out``: an optional (N, H, W, C) array to write the result into (returned).
    On NumPy the images go a few at a time (:mod:`minidl.kernels.blocking`), so that the padded
    block that the kh*kw offsets add into stays in the cache between the additions, and the
    blocks are shared between the cores (:mod:`minidl.kernels.threads`).
    """
    xp = get_array_module(cols)
    if xp is not np:
        x = cuda.col2im(cols, input_shape, sh, sw, ph, pw)
        if out is None:
            return x
        out[...] = x
        return out
    n, h, w, c = input_shape
    _, out_h, out_w, kh, kw, _ = cols.shape
    if out is None:
        out = xp.empty(input_shape, dtype=cols.dtype)
    padded_image_bytes = (h + 2 * ph) * (w + 2 * pw) * c * cols.itemsize

    def add_patches(block):
        cols_block = cols[block]
        x_padded = xp.zeros((cols_block.shape[0], h + 2 * ph, w + 2 * pw, c), dtype=cols.dtype)
        for i in range(kh):
            for j in range(kw):
                window(x_padded, i, j, out_h, out_w, sh, sw)[...] += cols_block[:, :, :, i, j, :]
        out[block] = x_padded[:, ph:ph + h, pw:pw + w, :]
    run_blocks(add_patches, batch_blocks(xp, n, padded_image_bytes))     # on every core (kernels/threads.py)
    return out
