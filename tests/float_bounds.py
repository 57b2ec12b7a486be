"""Forward error bounds of floating-point sums and products: the tolerances of the tests, derived.

A float32 result differs from the exact one by rounding, and by how much depends on the order
of the sums, which the BLAS kernel picks (OpenBLAS chooses among Haswell, SkylakeX, Sandybridge...
by CPU, and by the shape of the product). A tolerance that passes on one kernel can fail on
another unless it bounds the error of *every* order. The standard bounds do (Higham, *Accuracy
and Stability of Numerical Algorithms*, 2nd ed., ch. 3), with u the unit roundoff
(2**-24 for float32, 2**-53 for float64) and gamma_n = n u / (1 - n u):

* a sum of n terms, in any order:      |fl(sum x) - sum x| <= gamma_(n-1) * sum |x|
* a dot product of length n (any order, with or without FMA):
                                       |fl(a . b) - a . b| <= gamma_n * (|a| . |b|)
* hence a matrix product, elementwise: |fl(A @ B) - A @ B| <= gamma_K * (|A| @ |B|),  K = inner size

The bound is on |a| . |b|, not on |a . b|: when the terms cancel (a whitening matrix, a centred
signal) the result is small but its rounding error is not, and a tolerance relative to the size
of the result fails. Two float32 results of the same formula computed in different orders are
each within the bound of the exact value, so they are within twice the bound of each other.
"""
import numpy as np


def unit_roundoff(dtype=np.float32) -> float:
    """u: the largest relative error of one rounding to ``dtype`` (half its machine epsilon)."""
    return float(np.finfo(dtype).eps) / 2


def gamma(n, dtype=np.float32) -> float:
    """gamma_n = n u / (1 - n u): the relative error bound of n successive roundings."""
    nu = n * unit_roundoff(dtype)
    if nu >= 1:
        raise ValueError(f"gamma: n u = {nu} >= 1, the bound is void for n = {n} in {np.dtype(dtype)}")
    return nu / (1 - nu)


def matmul_error_bound(a, b, dtype=np.float32) -> np.ndarray:
    """Elementwise bound on |fl(a @ b) - a @ b| when the product is computed in ``dtype``: float64 array.

    a (..., M, K), b (K, N): gamma_K * (|a| @ |b|), with |a| @ |b| itself computed in float64.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    return gamma(a.shape[-1], dtype) * (np.abs(a) @ np.abs(b))


def sum_error_bound(values, axis=None, dtype=np.float32) -> np.ndarray:
    """Bound on |fl(values.sum(axis)) - values.sum(axis)| for a sum computed in ``dtype``: float64."""
    values = np.abs(np.asarray(values, dtype=np.float64))
    terms = values.size if axis is None else int(np.prod([values.shape[i] for i in np.atleast_1d(axis)]))
    return gamma(max(terms - 1, 0), dtype) * values.sum(axis=axis)


def assert_within(actual, expected, bound, what: str = "values") -> None:
    """|actual - expected| <= bound elementwise (bound broadcasts); on failure name the worst element.

    The comparison is done in float64, so it adds no rounding of its own.
    """
    actual, expected = np.asarray(actual, dtype=np.float64), np.asarray(expected, dtype=np.float64)
    assert actual.shape == expected.shape, f"{what}: shape {actual.shape} != expected {expected.shape}"
    bound = np.broadcast_to(np.asarray(bound, dtype=np.float64), actual.shape)
    error = np.abs(actual - expected)
    bad = ~(error <= bound)                                  # NaN counts as a failure
    if bad.any():
        excess = np.where(bad, np.nan_to_num(error - bound, nan=np.inf), -np.inf)
        worst = np.unravel_index(np.argmax(excess), actual.shape)
        raise AssertionError(f"{what}: {int(bad.sum())} of {actual.size} elements outside the bound; worst at "
                             f"{list(map(int, worst))}: {actual[worst]!r} vs {expected[worst]!r}, "
                             f"error {error[worst]:.3g} > bound {bound[worst]:.3g}")
