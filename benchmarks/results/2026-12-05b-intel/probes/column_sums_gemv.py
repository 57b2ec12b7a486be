"""Batch norm + ReLU (NIN's largest layer, batch 128) with its column sums as NumPy's sum(axis=0), as in
minidl/kernels/columns.py, or as the BLAS product ones @ block (sgemv), interleaved, best of 5 each."""
import time

import numpy as np

import minidl.functional.normalization as normalization
import minidl.kernels.host_memory as host_memory

host_memory.keep_freed_memory()


def best_ms(f, n=5):
    f()
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


_ones = {}


def gemv_sums(a):
    if a.shape[0] not in _ones:
        _ones[a.shape[0]] = np.ones(a.shape[0], a.dtype)
    return _ones[a.shape[0]] @ a


rng = np.random.default_rng(0)
N, C, H = 128, 192, 32
x = rng.standard_normal((N, H, H, C), dtype=np.float32).transpose(0, 3, 1, 2)
gy = rng.standard_normal((N, H, H, C), dtype=np.float32).transpose(0, 3, 1, 2)
w, b = np.ones(C, np.float32), np.zeros(C, np.float32)
print(f"batch norm + ReLU, x {x.shape} channels-last, 2 threads; ms")
for rep in range(3):
    for name, sums in (("sum(axis=0)", lambda a: a.sum(axis=0)), ("ones @ a", gemv_sums)):
        normalization.column_sums = sums
        fn = normalization.BatchNorm2d(np.zeros(C, np.float32), np.ones(C, np.float32), True, 0.1, 1e-5, "relu")
        print(f"{name:12s} forward {best_ms(lambda: fn.forward(x, w, b)):6.1f}  "
              f"backward {best_ms(lambda: fn.backward(gy)):6.1f}", flush=True)
