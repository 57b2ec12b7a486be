"""Small helpers shared by the functions (not part of the public API)."""
from __future__ import annotations

import numpy as np


def unbroadcast(grad, shape):
    """Sum ``grad`` down to ``shape``: the backward of NumPy broadcasting.

    If ``x`` of shape (3, 1) was broadcast to (2, 3, 4) in the forward pass, its
    gradient is the (2, 3, 4) gradient summed over the new leading axis and
    over the axis where x had size 1.
    """
    if grad.shape == tuple(shape):
        return grad
    extra = grad.ndim - len(shape)
    axes = tuple(range(extra)) + tuple(i + extra for i, n in enumerate(shape) if n == 1 and grad.shape[i + extra] != 1)
    grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


def pair(value, name: str, op: str) -> tuple:
    """(value, value) for an int, the tuple itself for a pair of ints (Python or NumPy ints; no floats, no bools).

    Only the type is checked here; each op checks the range (stride >= 1, ...) itself.
    """
    values = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(values) != 2 or not all(isinstance(v, (int, np.integer)) and not isinstance(v, bool) for v in values):
        raise ValueError(f"{op}: {name} must be an int or a pair of ints, got {value!r}")
    return tuple(int(v) for v in values)


def shape_str(shape) -> str:
    return "(" + ", ".join(str(int(s)) for s in shape) + ")"
