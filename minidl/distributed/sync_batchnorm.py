"""`SyncBatchNorm`: batch norm with the statistics of the *global* batch, over every rank.

With plain batch norm in data-parallel training, each rank normalizes with the mean and variance
of its own b images (DDP's default): with small local batches the statistics get noisy. Sync
batch norm computes them over the global batch of N b images:

Forward, per channel, one all-reduce (sum) of the local [sum x, sum x^2, count]::

    mean = sum_all x / M,    var = sum_all x^2 / M - mean^2      (M = global count, in float64;
                                                                  x shifted by the running mean first)
    y = gamma * (x - mean) / sqrt(var + eps) + beta

Backward, one all-reduce (sum) of the local [sum g, sum g * (x - mean)], g = dL_r/dy on this rank::

    dx = gamma / sigma * (g - sum_all g / M - xhat * sum_all(g * xhat) / M)

The upstream g on each rank is the gradient of its own loss L_r, and DDP averages the parameter
gradients over the ranks (divides by N): both together give the gradient of the global batch's
mean loss (1/N) sum_r L_r. For the same reason d gamma and d beta stay *local* sums; DDP's average
makes them global. Tested equal to :class:`minidl.nn.BatchNorm2d` on the global batch in one process.

In evaluation mode it is plain batch norm with the running statistics (the same on every rank).
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from ..engine.function import Function
from ..kernels.columns import column_dots, column_sums
from ..kernels.layout import from_nhwc, to_nhwc
from ..nn.batchnorm import BatchNorm2d
from .process_group import get_communicator


class SyncBatchNorm2dFunction(Function):
    """Training-mode batch norm over the global batch (see the module docstring); x (N, C, H, W)."""

    def __init__(self, running_mean, running_var, momentum, eps, communicator):
        self.running_mean, self.running_var = running_mean, running_var
        self.momentum, self.eps, self.communicator = momentum, eps, communicator

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        x_nhwc = to_nhwc(x)
        self.shape = x_nhwc.shape
        c = self.shape[3]
        x2 = x_nhwc.reshape(-1, c)                                      # (M_local, C)
        # sums of x - shift, shift = the running mean (the same on every rank): var = E[d^2] - E[d]^2
        # then loses little to cancellation, since d's mean is small next to its spread
        shift = xp.zeros(c, dtype=x.dtype) if self.running_mean is None else self.running_mean.astype(x.dtype)
        shifted = x2 - shift
        sums = xp.empty(2 * c + 1, dtype=np.float64)
        sums[:c] = column_sums(shifted)
        sums[c:2 * c] = column_dots(shifted, shifted)
        sums[2 * c] = x2.shape[0]
        del shifted
        self.communicator.all_reduce(sums, "sum")                        # one reduction per layer, forward
        m = float(sums[2 * c])
        shifted_mean = sums[:c] / m
        mean64 = shift.astype(np.float64) + shifted_mean
        var64 = xp.maximum(sums[c:2 * c] / m - shifted_mean * shifted_mean, 0.0)
        self.m = m
        self.centered = x2 - mean64.astype(x.dtype)
        if self.running_mean is not None:
            mom = self.momentum
            self.running_mean *= 1 - mom
            self.running_mean += (mom * mean64).astype(self.running_mean.dtype)
            self.running_var *= 1 - mom
            self.running_var += (mom * var64 * (m / max(m - 1, 1))).astype(self.running_var.dtype)
        self.inv_std = (1.0 / xp.sqrt(var64 + self.eps)).astype(x.dtype)
        self.weight = weight
        y = self.centered * (weight * self.inv_std)
        y += bias
        return from_nhwc(y.reshape(self.shape))

    def backward(self, gy):
        xp = get_array_module(gy)
        c = self.shape[3]
        g2 = to_nhwc(gy).reshape(-1, c)
        gbeta = column_sums(g2)                                          # local: DDP averages them
        g_dot_centered = column_dots(g2, self.centered)
        ggamma = g_dot_centered * self.inv_std
        sums = xp.empty(2 * c, dtype=np.float64)
        sums[:c] = gbeta
        sums[c:] = g_dot_centered
        self.communicator.all_reduce(sums, "sum")                        # one reduction per layer, backward
        total_gbeta = sums[:c].astype(gy.dtype)
        total_ggamma = (sums[c:] * self.inv_std).astype(gy.dtype)
        scale = self.weight * self.inv_std
        gx = g2 * scale
        gx += self.centered * (-scale * self.inv_std * total_ggamma / gy.dtype.type(self.m))
        gx -= scale * total_gbeta / gy.dtype.type(self.m)
        return from_nhwc(gx.reshape(self.shape)), ggamma, gbeta


class SyncBatchNorm(BatchNorm2d):
    """:class:`minidl.nn.BatchNorm2d` whose training statistics are those of the global batch.

    ``communicator``: default, the one :func:`minidl.distributed.init` started (looked up at each call).
    Same parameters, buffers and state_dict keys as BatchNorm2d.
    """

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1, communicator=None):
        super().__init__(num_features, eps, momentum)
        self.communicator = communicator

    def forward(self, x):
        if not self.training:
            return super().forward(x)
        if x.ndim != 4 or x.shape[1] != self.num_features:
            raise ValueError(f"SyncBatchNorm: expected input (N, {self.num_features}, H, W), got {tuple(x.shape)}")
        communicator = self.communicator if self.communicator is not None else get_communicator()
        return SyncBatchNorm2dFunction(self.running_mean, self.running_var, self.momentum, self.eps,
                                       communicator)(x, self.weight, self.bias)

    @classmethod
    def convert_sync_batchnorm(cls, module, communicator=None):
        """``module`` with every BatchNorm2d replaced, in place, by a SyncBatchNorm sharing its parameters
        and buffers (the optimizer keeps working on the same Parameters); returns ``module``."""
        for parent in module.modules():
            for name, child in list(parent._modules.items()):
                if type(child) is BatchNorm2d:
                    sync = cls(child.num_features, child.eps, child.momentum, communicator)
                    sync.weight, sync.bias = child.weight, child.bias
                    sync.set_buffer("running_mean", child.running_mean)
                    sync.set_buffer("running_var", child.running_var)
                    sync.train(child.training)
                    parent._modules[name] = sync          # in place: the order of the modules stays
        return module


convert_sync_batchnorm = SyncBatchNorm.convert_sync_batchnorm
