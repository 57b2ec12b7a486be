"""Batch norm + ReLU at NIN's shapes (batch 128, 2 threads) with cache blocks of 1, 2 and 3 MiB
(CACHE_BLOCK_BYTES), interleaved over 5 rounds, the best of 5 calls in each round kept, then the best round;
forward and backward apart, ms."""
import time

import numpy as np

import minidl.kernels.blocking as blocking
import minidl.kernels.host_memory as host_memory
from minidl.functional.normalization import BatchNorm2d

host_memory.keep_freed_memory()


def best_ms(f, n=5):
    f()
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


rng = np.random.default_rng(0)
budgets = (1 << 20, 2 << 20, 3 << 20)
for c, hw in ((192, 32), (160, 32), (96, 32), (192, 16), (192, 8)):
    x = rng.standard_normal((128, hw, hw, c), dtype=np.float32).transpose(0, 3, 1, 2)
    gy = rng.standard_normal((128, hw, hw, c), dtype=np.float32).transpose(0, 3, 1, 2)
    w, b = rng.random(c, dtype=np.float32) + 0.5, rng.standard_normal(c, dtype=np.float32)
    best = {budget: [1e9, 1e9] for budget in budgets}
    for rep in range(5):
        for budget in budgets:
            blocking.CACHE_BLOCK_BYTES = budget
            fn = BatchNorm2d(np.zeros(c, np.float32), np.ones(c, np.float32), True, 0.1, 1e-5, "relu")
            best[budget][0] = min(best[budget][0], best_ms(lambda: fn.forward(x, w, b)))
            best[budget][1] = min(best[budget][1], best_ms(lambda: fn.backward(gy)))
    print(f"{c}x{hw}x{hw}: " + "   ".join(f"{budget >> 20} MiB fwd {f:5.1f} bwd {bw:5.1f}" for budget, (f, bw) in best.items()),
          flush=True)
