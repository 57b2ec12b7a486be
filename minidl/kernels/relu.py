"""ReLU's two kernels on plain arrays: y = max(x, 0), and dL/dx = dL/dy where y > 0, else 0.

Used by the ReLU function and by every op that fuses a ReLU into its own blocks (a convolution's
outputs, batch norm's), so that they all compute exactly the same values.

On NumPy the zero is a tile of zeros (minidl/kernels/tiles.py), not the scalar 0 nor an array of
zeros as large as x: against a scalar NumPy runs a broadcast loop, and a full array of zeros takes
as much cache as the block itself. On an Intel AVX-512 machine (NumPy 2.4.6, a block of 1 MiB in
the cache) ``maximum(x, 0)`` into another block took 0.20 ns a value against a scalar, 0.39 against
a full array of zeros and 0.19 against a tile; in place, 0.18, 0.13 and 0.08
(benchmarks/results/2026-12-05b-intel/probes/relu_zero.log). The results are the same: a NaN in x
stays NaN.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from .tiles import Tile

_zero_tiles: dict = {}                 # dtype -> a Tile of zeros (read only: shared by the threads)


def relu_into(x, out) -> None:
    """out = max(x, 0); ``out`` may be ``x`` itself."""
    xp = get_array_module(x)
    if xp is not np:
        xp.maximum(x, x.dtype.type(0), out=out)
        return
    if x.dtype not in _zero_tiles:
        _zero_tiles[x.dtype] = Tile(np.zeros(1, dtype=x.dtype))
    _zero_tiles[x.dtype].apply(np.maximum, x, out)


def relu_grad_into(gy, y, out) -> None:
    """out = gy where y > 0, else 0 (y: the ReLU's output, or its input)."""
    get_array_module(gy).multiply(gy, y > 0, out=out)
