"""Batch normalization over (N, H, W) for each channel of x (N, C, H, W), optionally with its ReLU.

Training:   mu, var = mean and (biased) variance of channel c over the batch,
            y = gamma * (x - mu) / sqrt(var + eps) + beta,
            and the running statistics move towards the batch's:
            running = (1 - momentum) * running + momentum * batch (unbiased var).
Evaluation: the running statistics replace the batch's (cast to x's dtype: y has x's dtype).

Backward (training), with xhat = (x - mu) / sigma and g = dL/dy * gamma, over the M = N*H*W values
of a channel:  dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma.

``activation="relu"`` gives relu(batch_norm(x)) in the same passes: each block of y is clipped at
zero while it is still in the cache, and in the backward pass dL/dy is masked (y > 0) block by
block before the sums that use it. The values are those of batch norm then ReLU. In NIN with batch
norm every BatchNorm2d is followed by a ReLU, and MLPConv asks for this (minidl/nn/mlpconv.py).

On NumPy every pass over x (N*H*W rows of C channels, channels-last) runs in blocks of rows
that fit in the cache, shared between the cores (:mod:`minidl.kernels.blocking`,
:mod:`minidl.kernels.threads`); the per-channel sums of the blocks are added in float64.
x - mu is never stored: each pass that needs it recomputes it in the block, which costs less
than writing a whole array out to memory and reading it back. The forward pass reads x three
times (the mean, the variance, y); the backward reads dL/dy and x twice (its two per-channel
sums, then dx). An op between a block and a per-channel vector runs against a *tile*, the vector
repeated over a few dozen rows (:mod:`minidl.kernels.tiles`): NumPy then runs its plain loop over
long rows, and the tile stays in the cache beside the block.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module
from ..engine.function import Function
from ..engine.tensor import Tensor
from ..kernels.blocking import batch_blocks, scratch_array
from ..kernels.columns import blocked_column_sums, column_dots, column_sums
from ..kernels.layout import from_nhwc, to_nhwc
from ..kernels.relu import relu_grad_into, relu_into
from ..kernels.threads import run_blocks
from ..kernels.tiles import Tile, tile_rows
from ._utils import shape_str


class BatchNorm2d(Function):
    def __init__(self, running_mean, running_var, training, momentum, eps, activation=None):
        self.running_mean, self.running_var = running_mean, running_var
        self.training, self.momentum, self.eps, self.activation = training, momentum, eps, activation

    @property
    def name(self) -> str:
        return "BatchNorm2d+ReLU" if getattr(self, "activation", None) == "relu" else "BatchNorm2d"

    def forward(self, x, weight, bias):
        xp = get_array_module(x)
        x_nhwc = to_nhwc(x)
        self.shape = x_nhwc.shape
        c = self.shape[3]
        self.x2 = x2 = x_nhwc.reshape(-1, c)                           # (M, C)
        m = x2.shape[0]
        # rows that fit in the cache, a whole number of tiles (kernels/tiles.py) in each
        self.blocks = blocks = batch_blocks(xp, m, x2[0].nbytes, multiple=tile_rows(c))
        if self.training:
            mean = (blocked_column_sums(xp, blocks, lambda b: column_sums(x2[b]), c) / m).astype(x.dtype)
            self.mean_tile = Tile(mean)

            def squares(b):                                             # sum (x - mean)^2 of a block
                centered = self._centered(xp, b)
                return column_dots(centered, centered)
            var = blocked_column_sums(xp, blocks, squares, c) / m      # biased variance, two passes
            if self.running_mean is not None:
                mom = self.momentum
                self.running_mean *= 1 - mom
                self.running_mean += mom * mean
                self.running_var *= 1 - mom
                self.running_var += mom * var * (m / max(m - 1, 1))
        else:                                                           # statistics in x's dtype, so y keeps it
            mean, var = (stat.astype(x.dtype, copy=False) for stat in (self.running_mean, self.running_var))
            self.mean_tile = Tile(mean)
        self.inv_std = (1.0 / xp.sqrt(var + self.eps)).astype(x.dtype)
        self.scale_tile, beta = Tile(weight * self.inv_std), Tile(bias)  # the scale: d y / d x in eval mode
        y = xp.empty_like(x2)

        def normalize(b):                                               # y = (x - mean) * scale + beta
            out = y[b]
            self.mean_tile.apply(xp.subtract, x2[b], out)
            self.scale_tile.apply(xp.multiply, out, out)
            beta.apply(xp.add, out, out)
            if self.activation == "relu":
                relu_into(out, out=out)
        run_blocks(normalize, blocks)
        self.y2 = y if self.activation == "relu" else None              # for the backward's mask
        return from_nhwc(y.reshape(self.shape))

    def _centered(self, xp, b):
        """x - mean of the rows ``b``, in this thread's scratch buffer (valid until its next call)."""
        x = self.x2[b]
        centered = scratch_array(xp, "bn_centered", x.shape, x.dtype)
        self.mean_tile.apply(xp.subtract, x, centered)
        return centered

    def backward(self, gy):
        xp = get_array_module(gy)
        c = self.shape[3]
        g2 = to_nhwc(gy).reshape(-1, c)
        m = g2.shape[0]
        blocks = self.blocks
        gx = xp.empty_like(g2)
        fused = self.activation == "relu"

        def grad_out(b):
            """dL/d(batch norm's output) of the block: dL/dy, masked where the ReLU cut (written into gx)."""
            if not fused:
                return g2[b]
            relu_grad_into(g2[b], self.y2[b], out=gx[b])
            return gx[b]

        scale_tile = self.scale_tile                                    # the forward's, weight / sigma
        scale = scale_tile.vector

        def sums(b):                                                    # [sum g, sum g * (x - mean)] of a block
            g = grad_out(b)
            return xp.concatenate([column_sums(g), column_dots(g, self._centered(xp, b))])
        both = blocked_column_sums(xp, blocks, sums, 2 * c).astype(gy.dtype)   # one visit of dL/dy for both
        gbeta, g_dot_centered = both[:c], both[c:]
        ggamma = g_dot_centered * self.inv_std                          # sum of g * xhat
        # training: dx = scale * (g - mean(g) - xhat * mean(g * xhat)), as g*scale + (x - mean)*a + b;
        # evaluation: the statistics are constants, dx = g * scale
        a_tile = Tile(-scale * self.inv_std * ggamma / m)
        b_tile = Tile(-scale * gbeta / m)

        def input_grad(b):
            g = gx[b] if fused else g2[b]                               # the masked dL/dy is in gx already
            out = gx[b]
            if not self.training:
                scale_tile.apply(xp.multiply, g, out)
                return
            centered = self._centered(xp, b)
            a_tile.apply(xp.multiply, centered, centered)
            scale_tile.apply(xp.multiply, g, out)
            xp.add(out, centered, out=out)
            b_tile.apply(xp.add, out, out)
        run_blocks(input_grad, blocks)
        return from_nhwc(gx.reshape(self.shape)), ggamma, gbeta


def batch_norm2d(x, running_mean=None, running_var=None, weight=None, bias=None,
                 training: bool = True, momentum: float = 0.1, eps: float = 1e-5, activation=None):
    """Batch norm of x (N, C, H, W); running_mean/var are arrays (C,) updated in place when training.

    ``activation``: None, or "relu" for relu(batch_norm2d(...)) in the same passes over memory.
    """
    if x.ndim != 4:
        raise ValueError(f"batch_norm2d: expected input of shape (N, C, H, W), got {shape_str(x.shape)}")
    if activation not in (None, "relu"):
        raise ValueError(f"batch_norm2d: activation must be None or 'relu', got {activation!r}")
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
    y = BatchNorm2d(rm, rv, training, momentum, eps, activation)(x, weight, bias)
    if activation == "relu":
        y.relu_applied = True          # minidl.functional.relu(y) is y, as for conv2d(..., activation="relu")
    return y
