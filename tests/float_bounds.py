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


def matmul_error_bound(a, b, bias=None, dtype=np.float32) -> np.ndarray:
    """Elementwise bound on |fl(a @ b + bias) - (a @ b + bias)| computed in ``dtype``: float64 array.

    a (..., M, K), b (K, N), bias (N,) or None: gamma_K * (|a| @ |b|), or gamma_(K+1) * (|a| @ |b| + |bias|)
    (the bias is one more term of the sum), with |a| @ |b| itself computed in float64.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if bias is None:
        return gamma(a.shape[-1], dtype) * (np.abs(a) @ np.abs(b))
    return gamma(a.shape[-1] + 1, dtype) * (np.abs(a) @ np.abs(b) + np.abs(np.asarray(bias, dtype=np.float64)))


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
                             f"{list(map(int, worst))}: {float(actual[worst])!r} vs {float(expected[worst])!r}, "
                             f"error {error[worst]:.3g} > bound {bound[worst]:.3g}")


def gcn_error_bound(x, scale, sqrt_bias=0.0, use_std=False):
    """(g, e_g): minidl.data.GlobalContrastNormalize's exact result and a bound on its float32 error.

    x: the float32 images (N, ...) given to it; g and e_g: float64 (N, D), D values an image, so that
    |GlobalContrastNormalize(scale, sqrt_bias, use_std)(x) - g| <= e_g elementwise, in any summation order.
    The float32 steps, per image of d values, with m = mean(x), c = x - m, v = sum(c^2) (or its mean,
    use_std), n = sqrt(v + sqrt_bias), f = scale / n, g = c f, and u = 2**-24:
      m32: a float64 sum (gamma64_d), rounded to float32:          e_m <= gamma64_d mean|x| + u |m|
      c32 = fl(x - m32):                                           e_c <= e_m + u (|c| + e_m)
      n32: from c32, |c32|_2 = |c|_2 (1 + r0), r0 <= |e_c|_2 / |c|_2 (a positive sqrt_bias only
           shrinks the relative change); the squares, their sum, the division by d and the addition
           of sqrt_bias: d + 2 roundings of positive terms (gamma_(d+2)), halved by the square root,
           which rounds once more:                                 r_n = (1 + r0)(1 + gamma/2)(1 + u) - 1
      f32 = fl(scale / n32):                                       r_f <= (u + r_n) / (1 - r_n)
      g32 = fl(c32 f32):                                           e_g <= |g| (r_f + u + r_f u) + e_c f (1 + r_f)(1 + u)
    A flat image (c = 0) gives exactly 0: its float64 mean is exact, so c32 = 0 (g = e_g = 0 there).
    """
    assert x.dtype == np.float32
    u = unit_roundoff(np.float32)
    x = x.reshape(len(x), -1).astype(np.float64)          # the float32 input, exactly
    d = x.shape[1]
    m = x.mean(axis=1, keepdims=True)
    c = x - m
    flat = (c == 0).all(axis=1, keepdims=True)
    c = np.where(flat, 0.0, c)
    v = (c * c).mean(axis=1, keepdims=True) if use_std else (c * c).sum(axis=1, keepdims=True)
    n = np.sqrt(v + sqrt_bias)
    f = np.where(flat, 0.0, scale / np.where(flat, 1.0, n))
    g = c * f
    e_m = gamma(d, np.float64) * np.abs(x).mean(axis=1, keepdims=True) + u * np.abs(m)
    e_c = np.where(flat, 0.0, e_m + u * (np.abs(c) + e_m))
    norm = np.sqrt((c * c).sum(axis=1, keepdims=True))
    r0 = np.sqrt((e_c * e_c).sum(axis=1, keepdims=True)) / np.where(flat, 1.0, norm)
    sqrt_err = gamma(d + 2) / (1 + np.sqrt(1 - gamma(d + 2)))   # |sqrt(1 + t) - 1| for |t| <= gamma_(d+2)
    r_n = (1 + r0) * (1 + sqrt_err) * (1 + u) - 1
    r_f = (u + r_n) / (1 - r_n)
    e_g = np.abs(g) * (r_f + u + r_f * u) + e_c * f * (1 + r_f) * (1 + u)
    return g, e_g


def gcn_zca_error_bound(prep, x) -> np.ndarray:
    """Elementwise bound on |prep(x) - exact| in float32, prep = Compose([GlobalContrastNormalize(), ZCAWhitening()]).

    x: the float32 images (N, H, W, C) given to prep; returns float64 (N, H, W, C).
    The GCN step's bound is gcn_error_bound's (g, e_g); then, with mu and W the fitted ZCA mean and matrix,
    z32 = fl(g32 - mu):  e_z <= e_g + u (|z| + e_g), and y32 = fl(z32 @ W), a product of inner length d:
      |y32 - z @ W| <= e_z @ |W| + gamma_d (|z| + e_z) @ |W|.
    The bound is on |z| @ |W|, not on |y|: W fitted on fewer images than dimensions has large entries
    that cancel, so |y| is far smaller than |z| @ |W|, and a tolerance relative to |y| is wrong.
    """
    gcn, zca = prep.transforms
    u, u64 = unit_roundoff(np.float32), unit_roundoff(np.float64)
    g, e_g = gcn_error_bound(x, gcn.scale, gcn.sqrt_bias, gcn.use_std)
    d = g.shape[1]
    z = g - zca.mean.astype(np.float64)
    e_z = e_g + u * (np.abs(z) + e_g)
    w = np.abs(zca.whiten.astype(np.float64))
    bound = e_z @ w + gamma(d) * ((np.abs(z) + e_z) @ w) + u64 * d * (np.abs(z) @ w)   # + this float64 arithmetic
    return bound.reshape(x.shape)
