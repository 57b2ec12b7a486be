"""A product cut in two halves, one per thread (one BLAS thread each), with the helper thread left
where the scheduler wakes it or placed on the core the caller is not on; and when the helper starts.

    python benchmarks/results/2026-12-04-zen4/probes/thread_placement.py [--place]

Found on the 2-core VM: woken by the caller, the helper is often queued on the caller's own busy
core and starts its half only when the caller's is done (or the scheduler moves it ms later).
"""
import ctypes
import os
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import numpy as np
from threadpoolctl import threadpool_limits

place = "--place" in sys.argv
helper_id = []
pool = ThreadPoolExecutor(1, initializer=lambda: helper_id.append(threading.get_native_id()))
pool.submit(lambda: None).result()
getcpu = ctypes.CDLL(None).sched_getcpu
rng = np.random.default_rng(0)
M, N, K = 16384, 192, 75                          # conv1's forward product for 16 images
a = rng.standard_normal((M, K), dtype=np.float32)
b = rng.standard_normal((N, K), dtype=np.float32).T
y = np.empty((M, N), np.float32)
starts, totals = [], []


def half(i, t0):
    if i == 1:
        starts.append(time.perf_counter() - t0)
    rows = slice(i * M // 2, (i + 1) * M // 2)
    np.matmul(a[rows], b, out=y[rows])


with threadpool_limits(1, "blas"):
    for it in range(80):
        time.sleep(0.05 if it % 2 else 0.0)
        if place:
            others = sorted(os.sched_getaffinity(0) - {getcpu()})
            os.sched_setaffinity(helper_id[0], {others[0]})
        t0 = time.perf_counter()
        pending = pool.submit(half, 1, t0)
        half(0, t0)
        pending.result()
        totals.append(time.perf_counter() - t0)
starts, totals = np.array(starts[10:]) * 1e3, np.array(totals[10:]) * 1e3
print(f"{'placed off the caller' if place else 'left to the scheduler'}: second half starts after "
      f"{np.median(starts):.2f} ms (90th percentile {np.percentile(starts, 90):.2f}); "
      f"both halves {np.median(totals):.2f} ms (90th percentile {np.percentile(totals, 90):.2f})")
