"""Softmax, log-softmax and the fused softmax cross-entropy loss.

log_softmax(x)_k = x_k - m - log(sum_j exp(x_j - m)),  m = max_j x_j
(subtracting the max changes nothing mathematically and keeps exp from overflowing).

softmax_cross_entropy(logits (N, K), labels (N,) ints) = -(1/N) sum_n log_softmax(logits_n)[labels_n];
its gradient is the famous (softmax - one_hot(labels)) / N.
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module, is_cupy_array
from ..engine.function import Function
from ..engine.tensor import Tensor
from ..kernels.columns import row_maxima, row_sums
from ._utils import shape_str


def _log_softmax(x, axis):
    xp = get_array_module(x)
    z = x - x.max(axis=axis, keepdims=True)
    return z - xp.log(xp.exp(z).sum(axis=axis, keepdims=True))


class LogSoftmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        self.y = _log_softmax(x, self.axis)
        return self.y

    def backward(self, gy):
        xp = get_array_module(gy)
        return gy - xp.exp(self.y) * gy.sum(axis=self.axis, keepdims=True)


class Softmax(Function):
    def __init__(self, axis):
        self.axis = axis

    def forward(self, x):
        xp = get_array_module(x)
        self.y = xp.exp(_log_softmax(x, self.axis))
        return self.y

    def backward(self, gy):
        return self.y * (gy - (gy * self.y).sum(axis=self.axis, keepdims=True))


class SoftmaxCrossEntropy(Function):
    """loss = -mean_i log softmax(logits_i)[labels_i];  d loss / d logits = (softmax - one_hot(labels)) / N.

    ``labels_checked``: the caller has checked that every label lies in [0, K). Labels that live on the
    GPU are not (reading their range back would make the host wait for the GPU in every step): the
    check runs on the device instead, and an out-of-range label makes the loss NaN.
    """

    def __init__(self, labels, labels_checked: bool = True):
        self.labels, self.labels_checked = labels, labels_checked

    def forward(self, logits):
        xp = get_array_module(logits)
        n, k = logits.shape
        if not self.labels_checked:
            out_of_range = ((self.labels < 0) | (self.labels >= k)).any()        # a 0-d array: no wait
            self.labels = xp.clip(self.labels, 0, k - 1)                         # so the gather stays inside
        self.rows = xp.arange(n)
        shifted = logits - row_maxima(logits)[:, None]                           # z = x - max_j x_j
        exp = xp.exp(shifted)
        total = row_sums(exp)                                                    # sum_j exp(z_j), (N,)
        self.probs = exp / total[:, None]                                        # softmax, for backward
        picked = shifted[self.rows, self.labels] - xp.log(total)                 # log softmax at the labels
        loss = -(picked.sum(dtype=logits.dtype) / logits.dtype.type(n))
        if not self.labels_checked:
            loss = xp.where(out_of_range, logits.dtype.type(np.nan), loss)
        return loss

    def backward(self, gy):
        scale = gy / self.probs.shape[0]                                         # dL/dloss / N
        grad = self.probs * scale
        grad[self.rows, self.labels] -= scale
        return grad


def log_softmax(x, axis: int = -1):
    return LogSoftmax(axis)(x)


def softmax(x, axis: int = -1):
    return Softmax(axis)(x)


def softmax_cross_entropy(logits, labels):
    """Mean cross-entropy of logits (N, K) against integer class labels (N,).

    Labels may be a list, a tuple, a NumPy array or an array on the logits' backend: host labels are
    copied to the logits' backend (GPU labels with CPU logits are refused rather than copied back).
    """
    labels = labels.data if isinstance(labels, Tensor) else labels
    if logits.ndim != 2:
        raise ValueError(f"softmax_cross_entropy: expected logits of shape (N, K), got {shape_str(logits.shape)}")
    on_gpu = is_cupy_array(labels)
    if on_gpu and not is_cupy_array(logits.data):
        raise TypeError("softmax_cross_entropy: labels live on cupy but logits on numpy; "
                        "move the labels with minidl.backends.to_numpy")
    labels = labels if on_gpu else np.asarray(labels)
    if labels.dtype.kind not in "iu":
        raise TypeError(f"softmax_cross_entropy: labels must be integers (class indices), got dtype {labels.dtype}")
    n, k = logits.shape
    if labels.shape != (n,):
        raise ValueError(f"softmax_cross_entropy: labels must have shape ({n},) to match logits {shape_str(logits.shape)}, got {shape_str(labels.shape)}")
    if n and not on_gpu:                    # host labels: checked here for free (GPU labels: see SoftmaxCrossEntropy)
        low, high = int(labels.min()), int(labels.max())
        if low < 0 or high >= k:
            raise ValueError(f"softmax_cross_entropy: labels must lie in [0, {k - 1}] for {k} classes, got values in [{low}, {high}]")
    labels = get_array_module(logits.data).asarray(labels)
    return SoftmaxCrossEntropy(labels, labels_checked=not on_gpu)(logits)
