"""Pooling kernels on channels-last (N, H, W, C) arrays.

Like im2col, they loop over the kh*kw offsets (i, j) of the pooling window,
never over pixels: at offset (i, j), output cell (oh, ow) looks at input cell
(oh*sh + i - ph, ow*sw + j - pw), and for all cells at once that is one
strided slice of the input. Cells that would fall into the padding are simply
left out of the slice (:func:`offset_slices`), and a padded cell can never win
a max.

Max pooling keeps, per output cell, the largest value and *which offset* held
it (``argmax``, a small integer in [0, kh*kw)). The backward sends each output's
gradient to that one input cell; with overlapping windows (NIN's 3x3 stride 2)
one input cell can win several windows and receives the sum. As in PyTorch,
each window's first real cell is the winner to beat, so a window of -inf still
sends its gradient to a real cell; ties go to the first maximum; a NaN makes
the max NaN and its last NaN wins (the CUDA kernel follows the same rules).

On NumPy, max pooling first sorts each block of images into its *stride
classes* (:func:`stride_classes`): with stride (sh, sw), the input cells of
rows a, a + sh, a + 2*sh, ... and columns b, b + sw, ... make class (a, b),
copied into an array of their own with a border of -inf around them. Offset
(i, j) of every output cell then reads one class at one fixed shift, which in
a flat view of that class is one contiguous stretch of memory, lined up with a
flat view of the output (:func:`offset_views`). So each offset is one NumPy
call over one long contiguous stretch, which NumPy runs with vector
instructions; on the strided slices of the input, the same call walks the
cells C numbers at a time, and even over rows of a thousand contiguous numbers
NumPy 2.4 took four times as long a number as over one flat stretch
(benchmarks/results/2026-12-06b-zen4/probes/flat_vs_rows.log). A few outputs
past the real ones are computed on the way and thrown away. NIN's first pool
(96 channels, blocks of 4 images, one core) went from 206 to 120 us an image
forward and from 169 to 126 backward (probes/max_pool_classes.log there).
Winners: offsets are visited in order and the winner changes only where a
value is strictly larger, which gives each window its first maximum, as above;
the border never wins against a real value. A window whose max is NaN or -inf
(the rules above) has its block pooled again offset by offset on the strided
input (``_max_pool_block_by_offsets``, the plain method, which the tests also
compare the fast one with).

The NumPy path works on a few images at a time (:mod:`minidl.kernels.blocking`), so
each pass over a block reads it from the cache, not from main memory, and the
blocks are shared between the cores (:mod:`minidl.kernels.threads`). Without a
backward to come, the winners are not kept.

On CuPy, max pooling runs as one fused CUDA kernel each way (minidl/kernels/cuda.py)
that does the same loop over offsets inside each GPU thread.
"""
from __future__ import annotations

from typing import NamedTuple

import numpy as np

from ..backends import get_array_module
from . import blocking, cuda
from .blocking import batch_blocks, scratch_array
from .im2col import conv_output_size
from .threads import run_blocks

#: a block of max pooling holds this many cache blocks' worth of input (kernels/blocking.py), so that each
#: NumPy call runs longer: with 1 cache block, two threads took longer than one. NIN's first pool at batch
#: 64, 2 threads, forward / backward: 12.8 / 11.1 ms with 1 cache block (one thread: 11.4 / 10.4), 7.3 / 7.1
#: with 2, 6.5 / 6.4 with 4, 8.0 / 8.1 with 8 (benchmarks/results/2026-12-06b-zen4/probes/
#: max_pool_classes.log; the Zen 4 machine, whose second-level cache holds 1 MiB a core)
POOL_CACHE_BLOCKS = 4


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

    ``argmax`` holds the winning offset k = i*kw + j of each window. ``with_argmax=False`` (inference:
    no backward will run) skips the winners' bookkeeping.
    """
    xp = get_array_module(x)
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    index = np.int8 if kh * kw <= 127 else np.int32      # one byte per cell for the usual small windows
    if xp is not np:
        return cuda.max_pool_forward(x, out_h, out_w, kh, kw, sh, sw, ph, pw, index)
    window = (kh, kw, sh, sw, ph, pw)
    out = xp.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = xp.empty((n, out_h, out_w, c), dtype=index) if with_argmax else None

    def pool(block):                                     # one block at a time, in cache (kernels/blocking.py)
        _max_pool_block(x[block], out[block], None if argmax is None else argmax[block], window)
    run_blocks(pool, _pool_blocks(n, x[0].nbytes))        # on every core (kernels/threads.py)
    return out, argmax


def _pool_blocks(n: int, bytes_per_image: int) -> list:
    """The image slices of max pooling's blocks (:data:`POOL_CACHE_BLOCKS`)."""
    return batch_blocks(np, n, bytes_per_image, POOL_CACHE_BLOCKS * blocking.CACHE_BLOCK_BYTES)


class AxisPlan(NamedTuple):
    """How one axis (rows or columns) of a window is laid out in the stride classes (module docstring).

    Offset i of output o reads input cell o*stride + i - pad = stride*(o + q) + r, with q = (i - pad) // stride
    and r = (i - pad) % stride: cell o + q of class r, the cells r, r + stride, r + 2*stride, ... Each class
    is stored with ``lead`` padding cells first, so that offset i reads cell o + ``shift[i]`` of its padded
    class, ``shift[i]`` = q + lead >= 0; ``padded`` cells a class in all (outputs past ``out_size`` are
    computed and thrown away); ``count[r]``: the input cells of class r kept (a cell no window reads is not).
    """
    stride: int
    residue: list
    shift: list
    lead: int
    padded: int
    count: list


def axis_plan(k: int, stride: int, pad: int, size: int, out_size: int) -> AxisPlan:
    """The :class:`AxisPlan` of a window of ``k`` cells, ``stride`` and ``pad``, on an axis of ``size`` cells
    with ``out_size`` outputs."""
    q = [(i - pad) // stride for i in range(k)]
    lead = -min(q)
    padded = out_size + max(q) + lead
    count = [max(0, min(len(range(r, size, stride)), padded - lead)) for r in range(stride)]
    return AxisPlan(stride, [(i - pad) % stride for i in range(k)], [qi + lead for qi in q], lead, padded, count)


def _class_cells(rows: AxisPlan, cols: AxisPlan):
    """Yield (a, b, rows and columns of class (a, b) that hold input cells, the same cells' rows and columns
    in the input): slices, the first pair into one padded class (N, Hp, Wp, C), the second into x (N, H, W, C)."""
    for a in range(rows.stride):
        for b in range(cols.stride):
            inside = slice(rows.lead, rows.lead + rows.count[a]), slice(cols.lead, cols.lead + cols.count[b])
            cells = (slice(a, a + rows.stride * rows.count[a], rows.stride),
                     slice(b, b + cols.stride * cols.count[b], cols.stride))
            yield a, b, inside, cells


def stride_classes(x, rows: AxisPlan, cols: AxisPlan, fill, name: str = "pool_classes"):
    """x (N, H, W, C) sorted into its stride classes: an array (sh, sw, N, Hp, Wp, C) whose [a, b] holds the
    cells of x in rows a, a + sh, ... and columns b, b + sw, ..., after ``lead`` padding rows and columns;
    padding (and what is past the input's end) is ``fill``. The array is this thread's scratch buffer
    ``name`` (kernels/blocking.py): the next call with that name overwrites it."""
    n, _, _, c = x.shape
    classes = scratch_array(np, name, (rows.stride, cols.stride, n, rows.padded, cols.padded, c), x.dtype)
    for a, b, (inside_rows, inside_cols), (cell_rows, cell_cols) in _class_cells(rows, cols):
        grid = classes[a, b]
        np.copyto(grid[:, inside_rows, inside_cols], x[:, cell_rows, cell_cols])
        grid[:, :inside_rows.start] = fill                          # the padding around it
        grid[:, inside_rows.stop:] = fill
        grid[:, inside_rows, :inside_cols.start] = fill
        grid[:, inside_rows, inside_cols.stop:] = fill
    return classes


def offset_views(rows: AxisPlan, cols: AxisPlan, classes, kw: int, *flat_arrays):
    """Yield (k, the class cells offset k = i*kw + j reads, and the same stretch of each of ``flat_arrays``)
    for every offset, in order: flat, contiguous views, lined up so that element e of each stands for the
    same output cell. ``flat_arrays`` are laid out as one class, (N, Hp, Wp, C); output cell (n, o, p)
    reads class cell (n, o + di, p + dj): in the flat class, ``start`` = (di*Wp + dj)*C elements further on.
    """
    cell, width = classes.shape[-1], cols.padded
    length = classes[0, 0].size
    for i, (a, di) in enumerate(zip(rows.residue, rows.shift)):
        for j, (b, dj) in enumerate(zip(cols.residue, cols.shift)):
            start = (di * width + dj) * cell
            yield (i * kw + j, classes[a, b].reshape(-1)[start:],
                   *(array.reshape(-1)[:length - start] for array in flat_arrays))


def _max_pool_block(x, out, argmax, window):
    """Max pooling of a few images on the stride classes (see the module docstring): ``out`` (and ``argmax``
    unless None) written in place.

    Winners: offsets are visited in order and the winner changes only where a value is strictly larger,
    so each window keeps its first max in row-major order. Since k only grows from one offset to the
    next, "k where larger, else keep" is ``maximum(winner, larger * k)``.
    """
    kh, kw, sh, sw, ph, pw = window
    n, h, w, c = x.shape
    _, out_h, out_w, _ = out.shape
    rows, cols = axis_plan(kh, sh, ph, h, out_h), axis_plan(kw, sw, pw, w, out_w)
    classes = stride_classes(x, rows, cols, -np.inf)
    best = scratch_array(np, "pool_best", classes.shape[2:], x.dtype)
    winner = None
    if argmax is not None:
        winner = scratch_array(np, "pool_winner", best.shape, argmax.dtype)
        winner[...] = 0
    views = offset_views(rows, cols, classes, kw, best, *([] if winner is None else [winner]))
    _, values, first, *_ = next(views)              # offset 0: shift 0, a stretch as long as ``best``
    np.copyto(first, values)
    larger = chosen = None
    if winner is not None:
        larger = scratch_array(np, "pool_larger", (best.size,), bool)
        chosen = scratch_array(np, "pool_chosen", (best.size,), winner.dtype)
    for k, values, best_k, *winner_k in views:
        _keep_larger(best_k, values, winner_k[0] if winner_k else None, k, larger, chosen)
    out[...] = best[:, :out_h, :out_w]
    if argmax is None:
        return
    argmax[...] = winner[:, :out_h, :out_w]
    if out.size and not out.min() > -np.inf:                       # a window's max is NaN or -inf: rare
        _max_pool_block_by_offsets(x, out, argmax, window)


def _keep_larger(best, values, winner, k, larger, chosen) -> None:
    """best = maximum(best, values) in place; where values is strictly larger, winner = k (skipped when
    ``winner`` is None). ``k`` must exceed every winner so far. ``larger`` (bool) and ``chosen`` (like
    ``winner``): scratch space at least as long as ``best`` (flat)."""
    if winner is not None:
        larger, chosen = larger[:best.size], chosen[:best.size]
        np.greater(values, best, out=larger)
        np.multiply(larger.view(np.int8), winner.dtype.type(k), out=chosen)   # int8 x int8: no cast
        np.maximum(winner, chosen, out=winner)
    np.maximum(best, values, out=best)                             # a NaN propagates into the max


def _max_pool_block_by_offsets(x, out, argmax, window):
    """Max pooling of a few images, offset by offset on the strided input (the plain method, and the rule
    for windows whose max is NaN or -inf).

    First the maxima, one in-place ``maximum`` per offset. Then the winners: the max is exactly
    one of the window's values, so the winner is the first offset whose cell equals it. Visiting
    the offsets last to first and overwriting on equality leaves the first one (ties: the first
    max, as in PyTorch; a window of -inf: its first real cell).
    """
    n, h, w, c = x.shape
    _, out_h, out_w, _ = out.shape
    offsets = list(_offsets(*window, h, w, out_h, out_w))
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
        # winner = k where hit: arithmetic beats a masked copy
        winner += hit.view(np.int8) * (argmax.dtype.type(k) - winner)
    if np.isnan(out).any():                             # rare: as in PyTorch, a NaN window's winner is its last NaN
        for k, o, i in offsets:
            np.copyto(argmax[o], argmax.dtype.type(k), where=np.isnan(x[i]))


def max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw):
    """Route each output gradient (N, Ho, Wo, C) to the input cell that won its window."""
    xp = get_array_module(gy)
    if xp is not np:
        return cuda.max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw)
    n, h, w, c = input_shape
    window = (kh, kw, sh, sw, ph, pw)
    gx = xp.empty(input_shape, dtype=gy.dtype)

    def route(block):
        _max_pool_grad_block(gy[block], argmax[block], gx[block], window)
    run_blocks(route, _pool_blocks(n, gx[0].nbytes))
    return gx


def _max_pool_grad_block_by_offsets(gy, argmax, gx, window):
    """dL/dx of a few images, offset by offset on the strided gx (the plain method): ``gx`` written in place."""
    n, h, w, c = gx.shape
    _, out_h, out_w, _ = gy.shape
    gx[...] = 0
    for k, o, i in _offsets(*window, h, w, out_h, out_w):
        gx[i] += gy[o] * (argmax[o] == k)


def _max_pool_grad_block(gy, argmax, gx, window):
    """dL/dx of a few images, ``gx`` written in place: the forward's offsets again, on the stride classes.

    Offset k sends the gradient of each window it won to the class cell it read (``grads``, laid out as the
    forward's classes): ``gy * (argmax == k)``, written into its class where k is the first offset there,
    added after. Then each class is copied back into gx's strided cells.
    """
    kh, kw, sh, sw, ph, pw = window
    n, h, w, c = gx.shape
    _, out_h, out_w, _ = gy.shape
    rows, cols = axis_plan(kh, sh, ph, h, out_h), axis_plan(kw, sw, pw, w, out_w)
    padded = (n, rows.padded, cols.padded, c)
    gy_padded = scratch_array(np, "pool_gy", padded, gy.dtype)
    gy_padded[:, :out_h, :out_w] = gy
    gy_padded[:, out_h:] = 0                                       # outputs past the real ones send nothing,
    gy_padded[:, :out_h, out_w:] = 0                               # whatever their winners hold
    won = scratch_array(np, "pool_won", padded, argmax.dtype)
    won[:, :out_h, :out_w] = argmax
    grads = scratch_array(np, "pool_grads", (sh, sw, *padded), gy.dtype)
    started = np.zeros((sh, sw), dtype=bool)
    hits = scratch_array(np, "pool_hit", (gy_padded.size,), bool)
    masks = scratch_array(np, "pool_mask", (gy_padded.size,), gy.dtype)
    for k, target, gy_k, won_k in offset_views(rows, cols, grads, kw, gy_padded, won):
        hit, mask = hits[:gy_k.size], masks[:gy_k.size]
        np.equal(won_k, k, out=hit)
        np.copyto(mask, hit)                                       # 0 or 1; a float x float product runs faster
        a, b = rows.residue[k // kw], cols.residue[k % kw]
        if not started[a, b]:                                      # (what it leaves out of its class is border)
            started[a, b] = True
            np.multiply(gy_k, mask, out=target)
        else:
            np.multiply(gy_k, mask, out=mask)
            np.add(target, mask, out=target)
    if sum(rows.count) < h or sum(cols.count) < w or not started.all():
        gx[...] = 0                                                # cells that no window reads
    for a, b, (inside_rows, inside_cols), (cell_rows, cell_cols) in _class_cells(rows, cols):
        if started[a, b]:
            np.copyto(gx[:, cell_rows, cell_cols], grads[a, b, :, inside_rows, inside_cols])


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
