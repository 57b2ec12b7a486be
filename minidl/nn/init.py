"""Weight initializers (in place, from minidl's seeded host generator).

He / Kaiming normal: std = gain / sqrt(fan_in), gain = sqrt(2) for ReLU, which
keeps the variance of activations constant through a deep ReLU network.
fan_in of a conv weight (O, C, kh, kw) is C*kh*kw.

A layer (Conv2d, Linear) is filled by one named *scheme* (:func:`init_layer_`):

    "he"       weight ~ N(0, 2 / fan_in), bias = 0                (Kaiming He et al., 2015)
    "uniform"  weight, bias ~ U(-1/sqrt(fan_in), +1/sqrt(fan_in))  (PyTorch's default for
               nn.Conv2d and nn.Linear: kaiming_uniform_ with a = sqrt(5))
    a number s weight ~ N(0, s^2), bias = 0                       (the paper's Caffe model: 0.05)

"he" keeps activations at unit scale through any depth; "uniform" shrinks them by
about sqrt(6) per layer, so a deep net starts with logits near zero.
"""
from __future__ import annotations

import math
import numbers

import numpy as np

from .. import backends
from ..random import host_rng

#: the named schemes :func:`init_layer_` accepts (besides a positive number, a Gaussian std)
SCHEMES = ("he", "uniform")


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


def _gain(nonlinearity: str, a: float) -> float:
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        return math.sqrt(2.0 / (1.0 + a * a))
    if nonlinearity == "linear":
        return 1.0
    raise ValueError(f"init: nonlinearity must be 'relu', 'leaky_relu' or 'linear', got {nonlinearity!r}")


def kaiming_normal_(tensor, a: float = 0.0, nonlinearity: str = "relu"):
    """N(0, std^2) with std = gain / sqrt(fan_in) (PyTorch's ``kaiming_normal_``, mode fan_in)."""
    fan_in, _ = fan_in_and_out(tensor.shape)
    return normal_(tensor, 0.0, _gain(nonlinearity, a) / math.sqrt(fan_in))


def kaiming_uniform_(tensor, a: float = 0.0, nonlinearity: str = "leaky_relu"):
    """U(-b, b) with b = sqrt(3) * gain / sqrt(fan_in): the same variance as kaiming_normal_.

    With a = sqrt(5) (gain sqrt(1/3)) the bound is 1/sqrt(fan_in): PyTorch's layer default.
    """
    fan_in, _ = fan_in_and_out(tensor.shape)
    bound = math.sqrt(3.0) * _gain(nonlinearity, a) / math.sqrt(fan_in)
    return uniform_(tensor, -bound, bound)


def uniform_(tensor, low: float, high: float):
    return _fill(tensor, host_rng().uniform(low, high, size=tensor.shape))


def zeros_(tensor):
    return _fill(tensor, np.zeros(tensor.shape))


def ones_(tensor):
    return _fill(tensor, np.ones(tensor.shape))


def constant_(tensor, value: float):
    return _fill(tensor, np.full(tensor.shape, value))


def check_scheme(scheme, where: str = "init"):
    """Return ``scheme`` if it is "he", "uniform" or a positive number; else a ValueError naming ``where``."""
    if isinstance(scheme, str):
        if scheme in SCHEMES:
            return scheme
    elif isinstance(scheme, numbers.Real) and not isinstance(scheme, bool) and math.isfinite(scheme) and scheme > 0:
        return float(scheme)
    raise ValueError(f"{where}: init must be one of {', '.join(map(repr, SCHEMES))} "
                     f"or a positive Gaussian std, got {scheme!r}")


def init_layer_(weight, bias=None, scheme="he"):
    """Fill a layer's ``weight`` (and ``bias``, if any) by a scheme of this module's docstring."""
    scheme = check_scheme(scheme)
    if scheme == "he":
        kaiming_normal_(weight)
    elif scheme == "uniform":
        kaiming_uniform_(weight, a=math.sqrt(5.0))
    else:
        normal_(weight, 0.0, scheme)
    if bias is not None:
        if scheme == "uniform":
            bound = 1.0 / math.sqrt(fan_in_and_out(weight.shape)[0])
            uniform_(bias, -bound, bound)
        else:
            zeros_(bias)
    return weight
