"""max(x, 0) on one thread for a block in the cache: against the scalar 0, a full array of zeros, and a
row of L zeros broadcast over the block seen as (size / L, L); into another block and in place."""
import time

import numpy as np


def best_ns(f, n=300):
    f()
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e9


rng = np.random.default_rng(0)
print("ns a value, best of 300")
for n in (1 << 16, 1 << 18, 1 << 19):
    x = rng.standard_normal(n, dtype=np.float32)
    y = np.empty_like(x)
    zeros = np.zeros_like(x)
    res = {"scalar": best_ns(lambda: np.maximum(x, np.float32(0), out=y)),
           "full zeros": best_ns(lambda: np.maximum(x, zeros, out=y))}
    for L in (1024, 4096, 12288, 16384):
        z = np.zeros((1, L), np.float32)
        k = n - n % L
        xv, yv = x[:k].reshape(-1, L), y[:k].reshape(-1, L)
        res[f"row {L}"] = best_ns(lambda: np.maximum(xv, z, out=yv)) * n / k
    res["in place: scalar"] = best_ns(lambda: np.maximum(y, np.float32(0), out=y))
    res["in place: full zeros"] = best_ns(lambda: np.maximum(y, zeros, out=y))
    for L in (4096, 12288, 16384):
        z = np.zeros((1, L), np.float32)
        k = n - n % L
        yv = y[:k].reshape(-1, L)
        res[f"in place: row {L}"] = best_ns(lambda: np.maximum(yv, z, out=yv)) * n / k
    print(f"block {n * 4 >> 10:5d} KiB  " + "  ".join(f"{k} {v / n:.3f}" for k, v in res.items()), flush=True)
