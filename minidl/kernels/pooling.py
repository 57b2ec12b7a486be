"""Pooling kernels on channels-last (N, H, W, C) arrays.

Like im2col, they loop over the kh*kw offsets (i, j) of the pooling window,
never over pixels: at offset (i, j), output cell (oh, ow) looks at input cell
(oh*sh + i - ph, ow*sw + j - pw), and for all cells at once that is one
strided slice of the input. Cells that would fall into the padding are simply
left out of the slice (:func:`offset_slices`), so no padded copy of the input
is ever made, and a padded cell can never win a max.

Max pooling keeps, per output cell, the largest value and *which offset* held
it (``argmax``, a small integer in [0, kh*kw)). The backward sends each output's
gradient to that one input cell; with overlapping windows (NIN's 3x3 stride 2)
one input cell can win several windows and receives the sum. As in PyTorch,
each window's first real cell is the winner to beat, so a window of -inf still
sends its gradient to a real cell; ties go to the first maximum; a NaN makes
the max NaN and its last NaN wins (the CUDA kernel follows the same rules).

The NumPy path works on a few images at a time (:mod:`minidl.kernels.blocking`), so
the nine passes over each block of a 3x3 window read it from the cache, not
from main memory, and the blocks are shared between the cores
(:mod:`minidl.kernels.threads`). Forward finds the maxima first and the winners after, by
equality with the max (skipped when no backward will run).

On CuPy, max pooling runs as one fused CUDA kernel each way (minidl/kernels/cuda.py)
that does the same loop over offsets inside each GPU thread.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from . import cuda
from .blocking import batch_blocks
from .im2col import conv_output_size
from .threads import run_blocks


def offset_slices(offset: int, pad: int, stride: int, in_size: int, out_size: int):
    """(output slice, input slice) of the cells that kernel offset ``offset`` sees inside the input.

    Output cell o reads input cell o*stride + offset - pad; keep the o where that lies in [0, in_size).
    """
    first = max(0, -(-(pad - offset) // stride))                       # ceil((pad - offset) / stride)
    last = min(out_size - 1, (in_size - 1 + pad - offset) // stride)
    if last < first:
        return None, None
    start = first * stride + offset - pad
    return slice(first, last + 1), slice(start, start + (last - first) * stride + 1, stride)


def _offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w):
    """Yield (k, output index, input index) for every kernel offset k = i*kw + j that sees real cells."""
    for i in range(kh):
        oh, ih = offset_slices(i, ph, sh, h, out_h)
        for j in range(kw):
            ow, iw = offset_slices(j, pw, sw, w, out_w)
            if oh is not None and ow is not None:
                yield i * kw + j, (slice(None), oh, ow), (slice(None), ih, iw)


def max_pool_forward(x, kh, kw, sh, sw, ph, pw, with_argmax: bool = True):
    """(N, H, W, C) -> (max (N, Ho, Wo, C), argmax int8 (N, Ho, Wo, C), or None without ``with_argmax``).

    ``with_argmax=False`` (inference: no backward will run) skips the winners' bookkeeping.
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    index = np.int8 if kh * kw <= 127 else np.int32      # one byte per cell for the usual small windows
    if xp is not np:
        return cuda.max_pool_forward(x, out_h, out_w, kh, kw, sh, sw, ph, pw, index)
    offsets = list(_offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w))
    out = xp.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = xp.empty((n, out_h, out_w, c), dtype=index) if with_argmax else None

    def pool(block):                                     # one block at a time, in cache (kernels/blocking.py)
        _max_pool_block(x[block], out[block], None if argmax is None else argmax[block], offsets, index)
    run_blocks(pool, batch_blocks(xp, n, x[0].nbytes))   # on every core (kernels/threads.py)
    return out, argmax


def _max_pool_block(x, out, argmax, offsets, index):
    """Max pooling of a few images: ``out`` (and ``argmax`` unless None) written in place.

    First the maxima, one in-place ``maximum`` per offset. Then the winners: the max is exactly
    one of the window's values, so the winner is the first offset whose cell equals it. Visiting
    the offsets last to first and overwriting on equality leaves the first one (ties: the first
    max, as in PyTorch; a window of -inf: its first real cell).
    """
    out[...] = -np.inf
    for _, o, i in offsets:
        np.maximum(out[o], x[i], out=out[o])            # a NaN propagates into the max
    if argmax is None:
        return
    argmax[...] = 0
    equal = np.empty(out.shape, dtype=bool)
    for k, o, i in reversed(offsets):
        winner, hit = argmax[o], equal[o]
        np.equal(x[i], out[o], out=hit)
        winner += hit.view(np.int8) * (index(k) - winner)   # winner = k where hit (arithmetic beats a masked copy)
    if np.isnan(out).any():                             # rare: as in PyTorch, a NaN window's winner is its last NaN
        for k, o, i in offsets:
            np.copyto(argmax[o], index(k), where=np.isnan(x[i]))


def max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw):
    """Route each output gradient (N, Ho, Wo, C) to the input cell that won its window."""
    xp = get_array_module(gy)
    if xp is not np:
        return cuda.max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw)
    n, h, w, c = input_shape
    _, out_h, out_w, _ = gy.shape
    offsets = list(_offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w))
    gx = xp.empty(input_shape, dtype=gy.dtype)

    def route(block):
        gx_block, gy_block, argmax_block = gx[block], gy[block], argmax[block]
        gx_block[...] = 0
        for k, o, i in offsets:
            gx_block[i] += gy_block[o] * (argmax_block[o] == k)
    run_blocks(route, batch_blocks(xp, n, gx[0].nbytes))
    return gx


def avg_pool_forward(x, kh, kw, sh, sw, ph, pw):
    """Mean of each window; padded cells count as zeros (PyTorch's count_include_pad=True)."""
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    out = xp.zeros((n, out_h, out_w, c), dtype=x.dtype)
    for _, o, i in _offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w):
        out[o] += x[i]
    out *= x.dtype.type(1.0 / (kh * kw))
    return out


def avg_pool_backward(gy, input_shape, kh, kw, sh, sw, ph, pw):
    """Each input cell receives 1/(kh*kw) of the gradient of every window it belongs to."""
    xp = get_array_module(gy)
    n, h, w, c = input_shape
    _, out_h, out_w, _ = gy.shape
    share = gy * gy.dtype.type(1.0 / (kh * kw))
    gx = xp.zeros(input_shape, dtype=gy.dtype)
    for _, o, i in _offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w):
        gx[i] += share[o]
    return gx


def global_avg_pool_forward(x):
    """(N, H, W, C) -> (N, C): the mean over H and W.

    On NumPy the sum is a product with a row of ones, (1, H*W) @ (N, H*W, C), which the BLAS runs
    with vector instructions; NumPy's own sum over the middle axis of a (N, H*W, C) array walks it one
    short row of C numbers at a time. NIN's (N, 8*8, 10): 19 against 140 us at N = 128
    (benchmarks/results/2026-12-04-zen4/probes/gap_and_loss.log). The sum is then divided by H*W, as
    ``mean`` does. On CuPy, ``mean`` is one reduction kernel already.
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    rows = x.reshape(n, h * w, c)
    if xp is not np:
        return rows.mean(axis=1)
    sums = np.matmul(np.ones((1, h * w), dtype=x.dtype), rows).reshape(n, c)
    return sums / x.dtype.type(h * w)


def global_avg_pool_backward(gy, input_shape):
    """dL/dx (N, H, W, C) of the mean over H and W: every cell of map (n, c) gets gy[n, c] / (H*W).

    On NumPy ``repeat`` writes the H*W copies of each row of C numbers in one pass (twice as fast as
    assigning through a broadcast view at NIN's shapes); CuPy assigns through the broadcast view.
    """
    xp = get_array_module(gy)
    n, h, w, c = input_shape
    share = gy * gy.dtype.type(1.0 / (h * w))
    if xp is np:
        return np.repeat(share[:, None, :], h * w, axis=1).reshape(input_shape)
    gx = xp.empty(input_shape, dtype=gy.dtype)
    gx[...] = share[:, None, None, :]
    return gx
