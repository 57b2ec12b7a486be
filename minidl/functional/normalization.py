"""Batch normalization over (N, H, W) for each channel of x (N, C, H, W), optionally with its ReLU.

Training:   mu, var = mean and (biased) variance of channel c over the batch,
            y = gamma * (x - mu) / sqrt(var + eps) + beta,
            and the running statistics move towards the batch's:
            running = (1 - momentum) * running + momentum * batch (unbiased var).
Evaluation: the running statistics replace the batch's (y keeps x's dtype).

Backward (training), with xhat = (x - mu) / sigma and g = dL/dy * gamma, over the M = N*H*W values
of a channel:  dx = (g - mean(g) - xhat * mean(g * xhat)) / sigma.

``activation="relu"`` gives relu(batch_norm(x)) in the same passes: each block of y is clipped at
zero while it is still in the cache, and in the backward pass dL/dy is masked (y > 0) block by
block before the sums that use it. The values are those of batch norm then ReLU. In NIN with batch
norm every BatchNorm2d is followed by a ReLU, and MLPConv asks for this (minidl/nn/mlpconv.py).

On NumPy every pass over x (N*H*W rows of C channels, channels-last) runs in blocks of rows
that fit in the cache, shared between the cores (:mod:`minidl.kernels.blocking`,
:mod:`minidl.kernels.threads`); the per-channel sums of the blocks are added in float64.
Each NumPy operation over a block costs about the same, so the passes are written with as few as
the formulas allow (y is one multiply and one add per value, as in PyTorch's CPU forward):

  forward   one pass for the statistics, the sums of d = x - k and of d*d about a shift k near
            the mean (the mean of 64 rows spread over the batch): mean = k + E[d],
            var = E[d^2] - E[d]^2, which loses nothing to speak of as E[d] is small;
            one pass for y = x * scale + shift, scale = gamma / sigma, shift = beta - mean * scale.
  backward  one pass for sum g and sum g * x, whence sum g * (x - mean) = sum g*x - mean * sum g;
            one pass for dx = g * scale + x * a + b, a and b per-channel vectors (below).

Rounding: the multiply-adds work on x rather than x - mean, so their float32 errors are relative
to |x| instead of |x - mean|: larger by a factor of about 1 + |mean| / sigma, which is of order
one after a convolution. On 2 cores of an Intel AVX-512 machine (NumPy 2.4.6), forward + backward
with the ReLU at (128, 192, 32, 32) went from 89-96 ms (x - mean recomputed in every pass that
needed it, 17 array operations a value) to 74-76 ms (14 operations); with |mean| / sigma = 1.7,
dgamma's float32 error went from 6e-7 to 2e-6 of its largest value, y's and dx's stayed at 1-2e-7
(benchmarks/results/2026-12-05c-intel/probes/batch_norm_passes.log).
An op between a block and a per-channel vector runs against a *tile*, the vector
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
            mean, var = self._statistics(xp, x2, blocks)               # float64
            if self.running_mean is not None:
                mom = self.momentum
                self.running_mean *= 1 - mom
                self.running_mean += mom * mean
                self.running_var *= 1 - mom
                self.running_var += mom * var * (m / max(m - 1, 1))
        else:                                                           # copies: training may move them
            mean, var = (xp.array(stat, dtype=np.float64) for stat in (self.running_mean, self.running_var))
        self.mean = mean
        self.inv_std = 1.0 / xp.sqrt(var + self.eps)
        # y = (x - mean) * gamma / sigma + beta = x * scale + shift, in x's dtype
        scale = (weight * self.inv_std).astype(x.dtype)                # d y / d x in eval mode
        self.scale_tile = Tile(scale)
        shift = Tile((bias - mean * scale).astype(x.dtype))
        y = xp.empty_like(x2)

        def normalize(b):                                               # y = x * scale + shift
            out = y[b]
            self.scale_tile.apply(xp.multiply, x2[b], out)
            shift.apply(xp.add, out, out)
            if self.activation == "relu":
                relu_into(out, out=out)
        run_blocks(normalize, blocks)
        self.y2 = y if self.activation == "relu" else None              # for the backward's mask
        return from_nhwc(y.reshape(self.shape))

    @staticmethod
    def _statistics(xp, x2, blocks):
        """Mean and biased variance (C,), float64, of the columns of x2 (M, C) in one pass over memory.

        Each block's sums of d = x - k and d * d, for k the mean of 64 rows spread over the batch,
        are added in float64; then mean = k + E[d] and var = E[d^2] - E[d]^2. As k is near the
        mean, E[d]^2 is small next to E[d^2] and the subtraction loses nothing to speak of.
        """
        m, c = x2.shape
        sample = xp.asarray(np.linspace(0, m - 1, min(m, 64)).round().astype(np.intp))
        k = x2[sample].mean(axis=0)
        k_tile = Tile(k)

        def moments(b):                                                 # [sum d, sum d * d] of a block
            d = scratch_array(xp, "bn_deviation", x2[b].shape, x2.dtype)
            k_tile.apply(xp.subtract, x2[b], d)
            return xp.concatenate([column_sums(d), column_dots(d, d)])
        both = blocked_column_sums(xp, blocks, moments, 2 * c) / m
        offset = both[:c]
        return k + offset, xp.maximum(both[c:] - offset * offset, 0.0)

    def backward(self, gy):
        xp = get_array_module(gy)
        c = self.shape[3]
        g2 = to_nhwc(gy).reshape(-1, c)
        m = g2.shape[0]
        x2, blocks = self.x2, self.blocks
        gx = xp.empty_like(g2)
        fused = self.activation == "relu"

        def grad_out(b):
            """dL/d(batch norm's output) of the block: dL/dy, masked where the ReLU cut (written into gx)."""
            if not fused:
                return g2[b]
            relu_grad_into(g2[b], self.y2[b], out=gx[b])
            return gx[b]

        def sums(b):                                                    # [sum g, sum g * x] of a block
            g = grad_out(b)
            return xp.concatenate([column_sums(g), column_dots(g, x2[b])])
        both = blocked_column_sums(xp, blocks, sums, 2 * c)            # float64, one visit of dL/dy
        gbeta = both[:c]
        ggamma = (both[c:] - self.mean * gbeta) * self.inv_std         # sum g * xhat = sum g * (x - mean) / sigma
        scale_tile = self.scale_tile                                    # the forward's, gamma / sigma
        scale = scale_tile.vector
        # training: dx = scale * (g - mean(g) - xhat * mean(g * xhat)) = g * scale + x * a + b;
        # evaluation: the statistics are constants, dx = g * scale
        a = -scale * self.inv_std * ggamma / m
        a_tile, b_tile = Tile(a.astype(gy.dtype)), Tile((-scale * gbeta / m - self.mean * a).astype(gy.dtype))

        def input_grad(b):
            g = gx[b] if fused else g2[b]                               # the masked dL/dy is in gx already
            out = gx[b]
            if not self.training:
                scale_tile.apply(xp.multiply, g, out)
                return
            x_times_a = scratch_array(xp, "bn_x_times_a", out.shape, out.dtype)
            a_tile.apply(xp.multiply, x2[b], x_times_a)
            scale_tile.apply(xp.multiply, g, out)
            xp.add(out, x_times_a, out=out)
            b_tile.apply(xp.add, out, out)
        run_blocks(input_grad, blocks)
        return from_nhwc(gx.reshape(self.shape)), ggamma.astype(gy.dtype), gbeta.astype(gy.dtype)


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
