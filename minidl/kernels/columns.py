"""Column sums of a tall (M, C) matrix: bias gradients and batch-norm statistics
(and, with :func:`row_sums`, the sums along the short rows of class scores).

A convolution's bias gradient is the sum of dL/dy over all N*H*W pixels, for
each of the C channels: with dL/dy channels-last, that is the column sums of an
(M, C) row-major matrix, M = N*H*W in the hundred thousands and C a few hundred.

* NumPy: ``a.sum(axis=0)`` adds whole rows at a time, reading memory in order.
* CuPy: a reduction over axis 0 gives each column to one group of threads,
  which reads it with a stride of C numbers: scattered, slow reads. The same
  sums are the matrix-vector product ``ones(M) @ a``, and cuBLAS reads ``a``
  in order for it.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from .threads import run_blocks

_ones_cache: dict = {}


def _ones(xp, length: int, dtype):
    """A cached vector of ``length`` ones on the GPU (rebuilt if the device or dtype changes)."""
    key = (length, np.dtype(dtype).str, xp.cuda.Device().id)
    if key not in _ones_cache:
        if len(_ones_cache) > 32:
            _ones_cache.clear()
        _ones_cache[key] = xp.ones(length, dtype=dtype)
    return _ones_cache[key]


def column_sums(a):
    """sum_i a[i, c] for every column c of the 2-D array ``a`` -> (C,)."""
    xp = get_array_module(a)
    if xp is np:
        return a.sum(axis=0)
    return _ones(xp, a.shape[0], a.dtype) @ a


def row_sums(a):
    """sum_c a[i, c] for every row i of a 2-D array with short rows (class scores) -> (M,).

    NumPy's sum along a short last axis goes one row at a time (3.5 us for a (128, 10) array);
    the product ``a @ ones(C)`` runs in the BLAS (1.1 us): benchmarks/results/2026-12-04-zen4/
    probes/gap_and_loss.log. CuPy's sum along the rows is one kernel already.
    """
    xp = get_array_module(a)
    if xp is np:
        return a @ np.ones(a.shape[1], dtype=a.dtype)
    return a.sum(axis=1)


def row_maxima(a):
    """max_c a[i, c] for every row i of a 2-D array with short rows -> (M,).

    NumPy's max along a short last axis goes one row at a time too (3.9 us for a (64, 10) array);
    the maxima over the rows of the transposed copy run down whole columns (1.8 us with the copy).
    """
    xp = get_array_module(a)
    if xp is np:
        return np.maximum.reduce(np.ascontiguousarray(a.T))
    return a.max(axis=1)


def column_dots(a, b):
    """sum_i a[i, c] * b[i, c] for every column c -> (C,)."""
    xp = get_array_module(a)
    if xp is np:
        return np.einsum("ij,ij->j", a, b)          # one pass, no (M, C) temporary
    return _ones(xp, a.shape[0], a.dtype) @ (a * b)


def blocked_column_sums(xp, blocks, partial, n_columns: int):
    """sum over the row blocks of ``partial(rows)``, a (C,) sum of one block (e.g. ``column_sums(a[rows])``).

    The blocks' partial sums are computed on every core (:mod:`minidl.kernels.threads`), each into
    its own row of a table, and added in float64. One block (CuPy) returns its partial as it is.
    """
    if len(blocks) == 1:
        return partial(blocks[0])
    partials = xp.empty((len(blocks), n_columns), dtype=np.float64)

    def one(k):
        partials[k] = partial(blocks[k])
    run_blocks(one, list(range(len(blocks))))
    return partials.sum(axis=0)
