"""Gradient checking: compare backward with central finite differences.

For a scalar function L(x) the derivative along coordinate i is approximated by

    (L(x + eps e_i) - L(x - eps e_i)) / (2 eps),

whose error shrinks like eps^2. To check a function f with a non-scalar output
we contract it with a fixed random tensor r: L = sum(f(x) * r). Then dL/dx from
backward must match the finite differences for every input coordinate. Run it
in float64: with float32 the rounding error of the differences swamps the check.

    >>> import numpy as np, minidl
    >>> import minidl.functional as F
    >>> x = minidl.tensor(np.random.randn(2, 3, 5, 5), requires_grad=True)
    >>> w = minidl.tensor(np.random.randn(4, 3, 3, 3), requires_grad=True)
    >>> minidl.gradcheck(lambda x, w: F.conv2d(x, w, padding=1), [x, w])
    True
"""
from __future__ import annotations

import numpy as np

from .backends import get_array_module, to_numpy
from .engine.function import no_grad
from .engine.tensor import Tensor


class GradcheckError(AssertionError):
    """The analytic and numerical gradients disagree."""


def numerical_grad(fn, inputs, index, probe, eps=1e-6):
    """Central-difference gradient of sum(fn(*inputs) * probe) with respect to inputs[index]."""
    x = inputs[index].data
    grad = np.zeros(x.shape)
    with no_grad():
        for i in np.ndindex(*x.shape):      # x[i] writes through any memory layout (unlike x.reshape(-1))
            original = x[i].copy()
            x[i] = original + eps
            plus = float((fn(*inputs).data * probe).sum())
            x[i] = original - eps
            minus = float((fn(*inputs).data * probe).sum())
            x[i] = original
            grad[i] = (plus - minus) / (2 * eps)
    return grad


def gradcheck(fn, inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4, seed: int = 0,
              raise_exception: bool = True) -> bool:
    """Check ``fn(*inputs)``'s backward against finite differences for every input with requires_grad.

    inputs: Tensors (float64 recommended). Returns True, or raises GradcheckError naming the input,
    the worst coordinate and both values (returns False instead when raise_exception=False).
    """
    tensors = [t for t in inputs if isinstance(t, Tensor)]
    for t in tensors:
        if t.requires_grad and t.dtype != np.float64:
            raise TypeError(f"gradcheck: input of dtype {t.dtype}; use float64 inputs for a meaningful check")
        t.grad = None
    out = fn(*inputs)
    xp = get_array_module(out.data)
    rng = np.random.default_rng(seed)
    probe = xp.asarray(rng.standard_normal(out.shape)).astype(out.dtype)
    (out * Tensor(probe)).sum().backward()
    for index, t in enumerate(inputs):
        if not (isinstance(t, Tensor) and t.requires_grad):
            continue
        analytic = to_numpy(t.grad) if t.grad is not None else np.zeros(t.shape)
        numeric = to_numpy(numerical_grad(fn, inputs, index, probe, eps))
        for what, values in (("analytic", analytic), ("numerical", numeric)):
            if not np.all(np.isfinite(values)):      # NaN compares False with any bound: test it apart
                where = tuple(int(i) for i in np.argwhere(~np.isfinite(values))[0])
                message = (f"gradcheck: input {index} of shape {tuple(t.shape)}: the {what} gradient is not finite; "
                           f"{values[where]} at {where} ({int((~np.isfinite(values)).sum())} of {values.size} values)")
                if raise_exception:
                    raise GradcheckError(message)
                return False
        error = np.abs(analytic - numeric)
        bound = atol + rtol * np.abs(numeric)
        if np.any(error > bound):
            worst = np.unravel_index(np.argmax(error - bound), error.shape)
            message = (
                f"gradcheck: input {index} of shape {tuple(t.shape)}: analytic and numerical gradients differ; "
                f"worst at {tuple(int(i) for i in worst)}: analytic {analytic[worst]:.6g}, numerical {numeric[worst]:.6g} "
                f"(max abs error {error.max():.3g}, atol {atol}, rtol {rtol})"
            )
            if raise_exception:
                raise GradcheckError(message)
            return False
    return True
