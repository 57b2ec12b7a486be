"""conv1's forward product at batch 64 in 8 blocks on minidl's two threads (one BLAS thread each),
warm (called back to back) and after 0.2 s of rest (as the benchmarks time every call), with the
pool's thread placed off the caller's core (minidl.kernels.threads._place_workers) or, with
--scheduler, left where the scheduler wakes it. Median and 80th percentile of 15 calls, in ms.

    for i in 1 2 3; do python $P --scheduler; python $P; done     # P = this file
"""
import sys
import time

import numpy as np

from minidl.kernels import threads

arm = "scheduler" if "--scheduler" in sys.argv else "placed"
if arm == "scheduler":
    threads._place_workers = lambda: None
rng = np.random.default_rng(0)
M, N, K = 65536, 192, 75
a = rng.standard_normal((M, K), dtype=np.float32)
b = rng.standard_normal((N, K), dtype=np.float32).T
y = np.empty((M, N), np.float32)


def product_in_blocks():
    def one(i):
        rows = slice(i * M // 8, (i + 1) * M // 8)
        np.matmul(a[rows], b, out=y[rows])
    threads.run_blocks(one, list(range(8)))


def timed(rest, repeats=15):
    product_in_blocks()
    times = []
    for _ in range(repeats):
        time.sleep(rest)
        start = time.perf_counter()
        product_in_blocks()
        times.append(time.perf_counter() - start)
    times = np.sort(times) * 1e3
    return f"{times[repeats // 2]:6.2f} (80%: {times[int(repeats * 0.8)]:6.2f})"


print(f"{arm:9s} warm {timed(0.0)}  after 0.2 s rest {timed(0.2)}")
