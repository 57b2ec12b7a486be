"""Fused CUDA kernels for the hot ops on CuPy: one kernel launch where the NumPy path makes many.

The NumPy kernels (pooling.py, im2col.py) loop in Python over the kh*kw window
offsets and do a whole-array operation at each one. That is the right shape for
a CPU and the clearest to read, but on a GPU every array operation is a kernel
launch of its own, and at NIN's sizes the launches cost more than the arithmetic
(`benchmarks/bench_train_step.py --kernel-profile`). Here each op is a single
CuPy ``ElementwiseKernel``: the loop over window offsets moves *inside* the
kernel, and one GPU thread computes one output number.

All arrays are C-contiguous channels-last, so a flat index ``i`` unravels as
``i = ((n * H + y) * W + x) * C + c``.

The backward kernels *gather* rather than scatter: the thread for input cell
(y, x) visits the few windows that cover it and adds up what they send back,
so no two threads write to the same number (no atomics, same result every run).
Which windows cover input row y? Window ``o`` sees rows ``o*stride - pad + d``
for ``d`` in [0, k), so ``o`` runs from ceil((y + pad - k + 1) / stride) to
floor((y + pad) / stride), clipped to [0, out_size) (``covering_windows``).

The kernels compile on first use (CuPy caches the binaries on disk).
"""
from __future__ import annotations

import functools

from ..backends import get_array_module

_PREAMBLE = r"""
// The output cells o in [first, last] whose window (o*stride - pad + d, 0 <= d < k) covers input cell i.
__device__ void covering_windows(int i, int pad, int k, int stride, int out_size, int& first, int& last) {
    int lowest = i + pad - k + 1;
    first = lowest > 0 ? (lowest + stride - 1) / stride : 0;
    last = min((i + pad) / stride, out_size - 1);
}
"""


@functools.lru_cache(maxsize=None)
def _kernel(name: str):
    """Build (once) the CuPy ElementwiseKernel called ``name``."""
    import cupy

    in_params, out_params, body = _SOURCES[name]
    return cupy.ElementwiseKernel(in_params, out_params, body, f"minidl_{name}", preamble=_PREAMBLE)


_SOURCES = {
    # y[n, oy, ox, c] = max over the window; argmax = the offset k = dy*kw + dx that held it (first one on ties).
    # Padding is at most half the kernel, so every window holds at least one real cell.
    "max_pool_forward": (
        "raw T x, int32 h, int32 w, int32 c, int32 out_h, int32 out_w, "
        "int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw",
        "T y, S argmax",
        r"""
        int ch = i % c;
        ptrdiff_t rest = i / c;
        int ox = rest % out_w; rest /= out_w;
        int oy = rest % out_h;
        ptrdiff_t n = rest / out_h;
        T best = 0;
        int best_k = -1;
        for (int dy = 0; dy < kh; ++dy) {
            int iy = oy * sh - ph + dy;
            if (iy < 0 || iy >= h) continue;
            for (int dx = 0; dx < kw; ++dx) {
                int ix = ox * sw - pw + dx;
                if (ix < 0 || ix >= w) continue;
                T v = x[((n * h + iy) * w + ix) * c + ch];
                if (best_k < 0 || v > best || v != v) {     // v != v: a NaN wins (and stays, as in PyTorch)
                    best = v;
                    best_k = dy * kw + dx;
                }
            }
        }
        y = best;
        argmax = best_k < 0 ? 0 : best_k;
        """,
    ),
    # gx[n, iy, ix, c] = sum of gy over the windows whose winner was this cell.
    "max_pool_backward": (
        "raw T gy, raw S argmax, int32 h, int32 w, int32 c, int32 out_h, int32 out_w, "
        "int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw",
        "T gx",
        r"""
        int ch = i % c;
        ptrdiff_t rest = i / c;
        int ix = rest % w; rest /= w;
        int iy = rest % h;
        ptrdiff_t n = rest / h;
        int oy0, oy1, ox0, ox1;
        covering_windows(iy, ph, kh, sh, out_h, oy0, oy1);
        covering_windows(ix, pw, kw, sw, out_w, ox0, ox1);
        T total = 0;
        for (int oy = oy0; oy <= oy1; ++oy) {
            int dy = iy + ph - oy * sh;
            for (int ox = ox0; ox <= ox1; ++ox) {
                int dx = ix + pw - ox * sw;
                ptrdiff_t o = ((n * out_h + oy) * out_w + ox) * c + ch;
                if (argmax[o] == dy * kw + dx) total += gy[o];
            }
        }
        gx = total;
        """,
    ),
    # x[n, iy, ix, c] = sum of cols[n, oy, ox, dy, dx, c] over the patches that copied this cell (col2im).
    "col2im": (
        "raw T cols, int32 h, int32 w, int32 c, int32 out_h, int32 out_w, "
        "int32 kh, int32 kw, int32 sh, int32 sw, int32 ph, int32 pw",
        "T x",
        r"""
        int ch = i % c;
        ptrdiff_t rest = i / c;
        int ix = rest % w; rest /= w;
        int iy = rest % h;
        ptrdiff_t n = rest / h;
        int oy0, oy1, ox0, ox1;
        covering_windows(iy, ph, kh, sh, out_h, oy0, oy1);
        covering_windows(ix, pw, kw, sw, out_w, ox0, ox1);
        T total = 0;
        for (int oy = oy0; oy <= oy1; ++oy) {
            int dy = iy + ph - oy * sh;
            for (int ox = ox0; ox <= ox1; ++ox) {
                int dx = ix + pw - ox * sw;
                total += cols[((((n * out_h + oy) * out_w + ox) * kh + dy) * kw + dx) * c + ch];
            }
        }
        x = total;
        """,
    ),
    # dL/dx of relu, from its output y: gy where y > 0, else 0.
    "relu_backward": ("T gy, T y", "T gx", "gx = y > (T)0 ? gy : (T)0;"),
    # One SGD step with momentum for one parameter (the rule in minidl/optim/sgd.py), in place.
    "sgd_momentum": (
        "T grad, T lr, T momentum, T damping, T weight_decay, bool nesterov, bool first",
        "T param, T buffer",
        r"""
        T g = grad + weight_decay * param;
        buffer = first ? g : momentum * buffer + damping * g;
        param -= lr * (nesterov ? g + momentum * buffer : buffer);
        """,
    ),
}


def _window_args(input_shape, out_h, out_w, kh, kw, sh, sw, ph, pw):
    _, h, w, c = input_shape
    return (h, w, c, out_h, out_w, kh, kw, sh, sw, ph, pw)


def max_pool_forward(x, out_h, out_w, kh, kw, sh, sw, ph, pw, index_dtype):
    """(N, H, W, C) -> (max, argmax) of shape (N, Ho, Wo, C), in one launch."""
    xp = get_array_module(x)
    x = xp.ascontiguousarray(x)
    n, _, _, c = x.shape
    y = xp.empty((n, out_h, out_w, c), dtype=x.dtype)
    argmax = xp.empty((n, out_h, out_w, c), dtype=index_dtype)
    _kernel("max_pool_forward")(x, *_window_args(x.shape, out_h, out_w, kh, kw, sh, sw, ph, pw), y, argmax)
    return y, argmax


def max_pool_backward(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw):
    """Route each window's gradient (N, Ho, Wo, C) to its winner; (N, H, W, C), in one launch."""
    xp = get_array_module(gy)
    gy = xp.ascontiguousarray(gy)
    _, out_h, out_w, _ = gy.shape
    gx = xp.empty(input_shape, dtype=gy.dtype)
    _kernel("max_pool_backward")(gy, argmax, *_window_args(input_shape, out_h, out_w, kh, kw, sh, sw, ph, pw), gx)
    return gx


def col2im(cols, input_shape, sh, sw, ph, pw):
    """cols (N, Ho, Wo, kh, kw, C) -> (N, H, W, C), summing overlapping patches, in one launch."""
    xp = get_array_module(cols)
    cols = xp.ascontiguousarray(cols)
    _, out_h, out_w, kh, kw, _ = cols.shape
    x = xp.empty(input_shape, dtype=cols.dtype)
    _kernel("col2im")(cols, *_window_args(input_shape, out_h, out_w, kh, kw, sh, sw, ph, pw), x)
    return x


def relu_backward(gy, y):
    """gy * (y > 0) in one launch (the NumPy form makes a mask, then multiplies)."""
    return _kernel("relu_backward")(gy, y)


def sgd_momentum(param, grad, buffer, lr, momentum, dampening, weight_decay, nesterov, first):
    """Weight decay, momentum buffer and update of one parameter in one launch; param and buffer in place."""
    _kernel("sgd_momentum")(grad, lr, momentum, 1 - dampening, weight_decay, nesterov, first, param, buffer)
