"""Activations.  relu(x) = max(x, 0);  d relu / dx = 1 where x > 0, else 0."""
from __future__ import annotations

from ..backends import get_array_module, is_cupy_array
from ..engine.function import Function
from ..kernels import cuda
from ..kernels.layout import inverse_permutation, memory_order_view


class ReLU(Function):
    def forward(self, x):
        x_mem, self.perm = memory_order_view(x)                        # run in memory order, keep x's layout
        self.y_mem = get_array_module(x).maximum(x_mem, x.dtype.type(0))
        return self.y_mem.transpose(inverse_permutation(self.perm))

    def backward(self, gy):
        gy_mem = gy.transpose(self.perm)                                # gy in the forward's memory order
        if is_cupy_array(gy_mem):
            gx_mem = cuda.relu_backward(gy_mem, self.y_mem)                # one fused launch on the GPU
        else:
            gx_mem = gy_mem * (self.y_mem > 0)
        return gx_mem.transpose(inverse_permutation(self.perm))


def relu(x):
    return ReLU()(x)
