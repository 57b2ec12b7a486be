"""One NumPy call over a flat contiguous stretch against the same call over rows of a 2-D slice.

    python benchmarks/results/2026-12-06b-zen4/probes/flat_vs_rows.py

The stride classes of kernels/pooling.py rest on this: np.maximum over 64 rows of 1440 contiguous float32
(a slice of a (64, 1536) array, as the rows of one column phase would be) against one call over a flat
stretch of 98304, and against a Python loop of one call per row. Median of 301 calls, arrays in the cache.
"""
import time

import numpy as np


def median_us(fn, calls=301):
    fn()
    times = []
    for _ in range(calls):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return 1e6 * float(np.median(times))


print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
rng = np.random.default_rng(0)
a, b = rng.random((64, 1536), dtype=np.float32), rng.random((64, 1536), dtype=np.float32)
fa, fb = a.reshape(-1), b.reshape(-1)
rows_a, rows_b = [a[r, 96:] for r in range(64)], [b[r, 96:] for r in range(64)]


def row_by_row():
    for x, y in zip(rows_a, rows_b):
        np.maximum(x, y, out=x)


for name, fn, count in [
        ("flat stretch, 98304 numbers", lambda: np.maximum(fa, fb, out=fa), 98304),
        ("flat stretch, shifted by 96", lambda: np.maximum(fa[96:], fb[:-96], out=fa[96:]), 98208),
        ("2-D slice, 64 rows of 1440", lambda: np.maximum(a[:, 96:], b[:, 96:], out=a[:, 96:]), 92160),
        ("one call per row, 64 calls", row_by_row, 92160),
        ("2-D slice, add", lambda: np.add(a[:, 96:], b[:, 96:], out=a[:, 96:]), 92160),
        ("flat stretch, add", lambda: np.add(fa, fb, out=fa), 98304)]:
    t = median_us(fn)
    print(f"{name:32s} {t:7.1f} us  {1e3 * t / count:5.3f} ns a number")
