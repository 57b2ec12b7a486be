"""Batch normalization over (N, H, W) for each channel of x (N, C, H, W).

Training:   mu, var = mean and (biased) variance of channel c over the batch,
            y = gamma * (x - mu) / sqrt(var + eps) + beta,
            and the running statistics move towards the batch's:
            running = (1 - momentum) * running + momentum * batch (unbiased var).
Evaluation: the running statistics replace the batch's (cast to x's dtype: y has x's dtype).

Backward (training), with xhat = (x - mu) / sigma and g = dL/dy * gamma, over the M = N*H*W values
of a channel:  dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma.

On NumPy every pass over x (N*H*W rows of C channels, channels-last) runs in blocks of rows
that fit in the cache, shared between the cores (:mod:`minidl.kernels.blocking`,
:mod:`minidl.kernels.threads`); the per-channel sums of the blocks are added in float64.
The backward pass reads dL/dy twice: once for both of its per-channel sums, once for dx.
"""
from __future__ import annotations

from minidl.backends import get_array_module
from minidl.engine.function import Function
from minidl.engine.tensor import Tensor
from minidl.kernels.blocking import batch_blocks
from minidl.kernels.columns import blocked_column_sums, column_dots, column_sums
from minidl.kernels.layout import from_nhwc, to_nhwc
from minidl.kernels.threads import run_blocks
from minidl.functional._utils import shape_str


class BatchNorm2d(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps = training, momentum, eps

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        x_nhwc = to_nhwc(x)
        self.shape = x_nhwc.shape
        c = self.shape[3]
        x2 = x_nhwc.reshape(-1, c)                                     # (M, C)
        m = x2.shape[0]
        self.blocks = blocks = batch_blocks(xp, m, x2[0].nbytes)        # rows that fit in the cache
        self.centered = xp.empty_like(x2)
        if self.training:
            mean = (blocked_column_sums(xp, blocks, lambda rows: column_sums(x2[rows]), c) / m).astype(x.dtype)

            def center(rows):
                xp.subtract(x2[rows], mean, out=self.centered[rows])
                return column_dots(self.centered[rows], self.centered[rows])
            var = blocked_column_sums(xp, blocks, center, c) / m      # biased variance, two passes
            if self.running_mean is not None:
                mom = self.momentum
                self.running_mean *= 1 - mom
                self.running_mean += mom * mean
                self.running_var *= 1 - mom
                self.running_var += mom * var * (m / max(m - 1, 1))
        else:                                                           # statistics in x's dtype, so y keeps it
            mean, var = (stat.astype(x.dtype, copy=False) for stat in (self.running_mean, self.running_var))
            run_blocks(lambda rows: xp.subtract(x2[rows], mean, out=self.centered[rows]), blocks)
        self.inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)
        self.weight = weight
        scale = weight * self.inv_std
        y = xp.empty_like(x2)

        def normalize(rows):                                            # y = xhat * gamma + beta, without storing xhat
            out = y[rows]
            xp.multiply(self.centered[rows], scale, out=out)
            out += bias
        run_blocks(normalize, blocks)
        return from_nhwc(y.reshape(self.shape))

    def backward(self, gy):
        xp = get_array_module(gy)
        c = self.shape[3]
        g2 = to_nhwc(gy).reshape(-1, c)
        m = g2.shape[0]
        blocks = self.blocks
        scale = self.weight * self.inv_std                              # d y / d x in eval mode

        def sums(rows):                                                 # [sum g, sum g * centered] of a block
            return xp.concatenate([column_sums(g2[rows]), column_dots(g2[rows], self.centered[rows])])
        both = blocked_column_sums(xp, blocks, sums, 2 * c).astype(gy.dtype)   # one visit of dL/dy for both
        gbeta, g_dot_centered = both[:c], both[c:]
        ggamma = g_dot_centered * self.inv_std                          # sum of g * xhat
        gx = xp.empty_like(g2)
        # dx = scale * (g - mean(g) - xhat * mean(g * xhat)), written as g*scale + centered*a + b
        a = -scale * self.inv_std * ggamma / m
        b = -scale * gbeta / m

        def input_grad(rows):
            out = gx[rows]
            xp.multiply(g2[rows], scale, out=out)
            if self.training:
                out += self.centered[rows] * a
                out += b
        run_blocks(input_grad, blocks)
        return from_nhwc(gx.reshape(self.shape)), ggamma, gbeta


def batch_norm2d(x, running_mean=None, running_var=None, weight=None, bias=None,
                 training: bool = True, momentum: float = 0.1, eps: float = 1e-5):
    """Batch norm of x (N, C, H, W); running_mean/var are arrays (C,) updated in place when training."""
    if x.ndim != 4:
        raise ValueError(f"batch_norm2d: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    c = x.shape[1]
    xp = get_array_module(x.data)
    for name, arr in (("running_mean", running_mean), ("running_var", running_var), ("weight", weight), ("bias", bias)):
        if arr is not None and tuple(arr.shape) != (c,):
            raise ValueError(f"batch_norm2d: {name} must have shape ({c},) for {c} channels, got {shape_str(arr.shape)}")
    if not training and (running_mean is None or running_var is None):
        raise ValueError("batch_norm2d: evaluation mode needs running_mean and running_var")
    if training and x.shape[0] * x.shape[2] * x.shape[3] < 2:
        raise ValueError(f"batch_norm2d: training needs more than one value per channel, got input {shape_str(x.shape)}")
    weight = weight if weight is not None else Tensor(xp.ones(c, dtype=x.dtype))
    bias = bias if bias is not None else Tensor(xp.zeros(c, dtype=x.dtype))
    rm = running_mean.data if isinstance(running_mean, Tensor) else running_mean
    rv = running_var.data if isinstance(running_var, Tensor) else running_var
    return BatchNorm2d(rm, rv, training, momentum, eps)(x, weight, bias)
