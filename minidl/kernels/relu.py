"""ReLU's two kernels on plain arrays: y = max(x, 0), and dL/dx = dL/dy where y > 0, else 0.

Used by the ReLU function and by every op that fuses a ReLU into its own blocks (a convolution's
outputs, batch norm's), so that they all compute exactly the same values.

On NumPy the zero is an *array* of zeros (a per-thread buffer, minidl/kernels/blocking.py), not the
scalar 0: NumPy runs ``maximum(x, 0)`` with the scalar broadcast through a loop about 3x slower than
``maximum(x, zeros)`` over two arrays (NumPy 2.4.6 on an AVX-512 machine, a block of 1 MB in the
cache: 137 against 40 microseconds, benchmarks/results/2026-12-04-zen4/probes/numpy_ops.log). The
results are the same: a NaN in x stays NaN.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from .blocking import zeros_buffer


def relu_into(x, out) -> None:
    """out = max(x, 0); ``out`` may be ``x`` itself."""
    xp = get_array_module(x)
    zero = zeros_buffer(x.size, x.dtype).reshape(x.shape) if xp is np else x.dtype.type(0)
    xp.maximum(x, zero, out=out)


def relu_grad_into(gy, y, out) -> None:
    """out = gy where y > 0, else 0 (y: the ReLU's output, or its input)."""
    get_array_module(gy).multiply(gy, y > 0, out=out)
