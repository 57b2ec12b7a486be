"""Weight initializers (in place, from minidl's seeded host generator).

He / Kaiming normal: std = gain / sqrt(fan_in), gain = sqrt(2) for ReLU, which
keeps the variance of activations constant through a deep ReLU network.
fan_in of a conv weight (O, C, kh, kw) is C*kh*kw.
"""
from __future__ import annotations

import math

import numpy as np

from .. import backends
from ..random import host_rng


def fan_in_and_out(shape) -> tuple:
    if len(shape) < 2:
        raise ValueError(f"init: fan in/out need a weight with at least 2 dimensions, got shape {tuple(shape)}")
    receptive = int(np.prod(shape[2:])) if len(shape) > 2 else 1
    return shape[1] * receptive, shape[0] * receptive


def _fill(tensor, sample):
    tensor.data = backends.to_backend(sample.astype(tensor.dtype), backends.backend_of(tensor.data))
    return tensor


def normal_(tensor, mean: float = 0.0, std: float = 1.0):
    """Gaussian N(mean, std^2), e.g. std=0.05 as in the paper's Caffe model."""
    return _fill(tensor, host_rng().normal(mean, std, size=tensor.shape))


def kaiming_normal_(tensor, nonlinearity: str = "relu"):
    gain = math.sqrt(2.0) if nonlinearity == "relu" else 1.0
    fan_in, _ = fan_in_and_out(tensor.shape)
    return normal_(tensor, 0.0, gain / math.sqrt(fan_in))


def uniform_(tensor, low: float, high: float):
    return _fill(tensor, host_rng().uniform(low, high, size=tensor.shape))


def zeros_(tensor):
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor):
    return _fill(tensor, np.ones(tensor.shape))


def constant_(tensor, value: float):
    return _fill(tensor, np.full(tensor.shape, value))
