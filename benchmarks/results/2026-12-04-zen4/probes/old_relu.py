"""Activations.  relu(x) = max(x, 0);  d relu / dx = 1 where x > 0, else 0.

On NumPy both directions run in blocks of the batch shared between the cores
(:mod:`minidl.kernels.blocking`, :mod:`minidl.kernels.threads`); the result is the same.
"""
from __future__ import annotations

import numpy as np

from minidl.backends import get_array_module, is_cupy_array
from minidl.engine.function import Function
from minidl.kernels import cuda
from minidl.kernels.blocking import batch_blocks
from minidl.kernels.layout import inverse_permutation, memory_order_view
from minidl.kernels.threads import run_blocks


def _blocks(a):
    """Blocks along the slowest axis of the memory-order view ``a`` (the batch, for an activation)."""
    return batch_blocks(get_array_module(a), a.shape[0], a[0].nbytes)


class ReLU(Function):
    def forward(self, x):
        x_mem, self.perm = memory_order_view(x)                        # run in memory order, keep x's layout
        xp = get_array_module(x)
        zero = x.dtype.type(0)
        if xp is np and x_mem.ndim > 0:
            self.y_mem = np.empty_like(x_mem)
            run_blocks(lambda b: np.maximum(x_mem[b], zero, out=self.y_mem[b]), _blocks(x_mem))
        else:
            self.y_mem = xp.maximum(x_mem, zero)
        return self.y_mem.transpose(inverse_permutation(self.perm))

    def backward(self, gy):
        gy_mem = gy.transpose(self.perm)                                # gy in the forward's memory order
        if is_cupy_array(gy_mem):
            gx_mem = cuda.relu_backward(gy_mem, self.y_mem)                # one fused launch on the GPU
        elif gy_mem.ndim > 0:
            gx_mem = np.empty_like(self.y_mem, dtype=gy.dtype)
            run_blocks(lambda b: np.multiply(gy_mem[b], self.y_mem[b] > 0, out=gx_mem[b]), _blocks(gy_mem))
        else:
            gx_mem = gy_mem * (self.y_mem > 0)
        return gx_mem.transpose(inverse_permutation(self.perm))


def relu(x):
    """max(x, 0). The output of a convolution with a fused ReLU (``conv2d(..., activation="relu")``)
    is already that: it comes back as it is, and its gradient is masked inside the convolution."""
    if getattr(x, "relu_applied", False):
        return x
    return ReLU()(x)
