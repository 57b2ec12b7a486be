"""A short vector repeated along a block: element-wise ops at the speed of NumPy's plain loops.

Batch norm applies per-channel vectors to blocks of a channels-last matrix: y = (x - mean) * scale
+ shift, with x a block of n rows of C channels and mean, scale, shift vectors (C,); a ReLU applies
max(., 0) to every value. NumPy offers two ways to write ``block - mean``, both slow:

* broadcast the vector, ``block - mean[None, :]``: NumPy runs its inner loop over one row of C
  numbers (C = 96..192 in NIN) and pays its loop overhead again for every row;
* a full copy of the vector repeated over the block's n rows: the inner loop is plain, but that copy
  is as large as the block, and three of them (mean, scale, shift) push the block out of the cache.

A *tile* sits between the two: the vector repeated r times into one row of L = r*C numbers, L about
:data:`TILE_VALUES` (48 KiB of float32, the size of a core's first-level cache). The block, seen
flat as (n*C / L, L), broadcasts against that row: NumPy's inner loop runs over L numbers and the
tile stays in the cache. On an Intel AVX-512 machine (2 cores, NumPy 2.4.6, blocks of 1 MiB on
both cores), ``x - mean`` into a fresh block, then ``*``, ``+`` and the ReLU in place, took
25.6-26.3 ms over a (131072, 192) matrix against full-size copies of the vectors and 18.9-19.0 ms
against tiles of 64 rows, the tile for 192 channels
(benchmarks/results/2026-12-05b-intel/probes/tiles.log). The values are the same: each number meets
the same entry of the vector, in the same operation.

A block of S numbers is cut into its first S - S % L numbers, seen as (S // L, L), and the rest,
which meets the tile's first S % L numbers: S and L are both multiples of C, so each value still
meets its own channel's entry. Blocks whose rows are a multiple of r (``batch_blocks(...,
multiple=tile_rows(C))``) have no rest.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module

#: numbers in a tile's row: 48 KiB of float32
TILE_VALUES = 12288


def tile_rows(channels: int) -> int:
    """Rows of ``channels`` values in one tile: max(1, TILE_VALUES // channels)."""
    return max(1, TILE_VALUES // channels)


class Tile:
    """``vector`` (C,) repeated ``rows`` = max(1, TILE_VALUES // C) times as one row (1, rows*C).

    ``tile.apply(ufunc, a, out)`` computes ``ufunc(a, vector)`` for a block ``a`` whose last axis
    has the C channels (or any shape, for a vector of one number), as if the vector were broadcast
    along a's other axes. On CuPy, or where ``a`` or ``out`` is not contiguous, it is that broadcast.
    """

    def __init__(self, vector):
        self.vector = vector
        self.xp = get_array_module(vector)
        self.channels = vector.shape[0]
        self.rows = tile_rows(self.channels)
        self.row = np.tile(vector, self.rows)[None, :] if self.xp is np else vector

    def apply(self, ufunc, a, out) -> None:
        """out = ufunc(a, vector) with the vector along a's last axis; ``out`` may be ``a``."""
        if a.shape[-1] != self.channels and self.channels != 1:
            raise ValueError(f"Tile.apply: a block with {self.channels} values in its last axis expected, "
                             f"got shape {a.shape}")
        if self.xp is not np or not (a.flags.c_contiguous and out.flags.c_contiguous):
            ufunc(a, self.vector, out=out)
            return
        flat_a, flat_out = a.reshape(-1), out.reshape(-1)               # views: both are contiguous
        size, length = flat_a.size, self.row.shape[1]
        whole = size - size % length
        if whole:
            ufunc(flat_a[:whole].reshape(-1, length), self.row, out=flat_out[:whole].reshape(-1, length))
        if whole < size:
            ufunc(flat_a[whole:], self.row[0, :size - whole], out=flat_out[whole:])
