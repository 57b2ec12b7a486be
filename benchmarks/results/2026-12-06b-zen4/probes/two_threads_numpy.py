"""How two Python threads share this machine's two cores on plain NumPy calls: np.maximum in place over
float32 arrays of N numbers, one thread running `reps` calls, then two threads each running as many on
arrays of their own. Scaling = 2 x (one thread's time) / (two threads' time): 2.0 would be perfect.

    python benchmarks/results/2026-12-06b-zen4/probes/two_threads_numpy.py
"""
import threading
import time

import numpy as np


def scaling(n, reps):
    arrays = [[np.random.default_rng(t).random(n, dtype=np.float32) for _ in range(2)] for t in range(2)]

    def work(t):
        a, b = arrays[t]
        for _ in range(reps):
            np.maximum(a, b, out=a)
    work(0)
    start = time.perf_counter()
    work(0)
    one = time.perf_counter() - start
    threads = [threading.Thread(target=work, args=(t,)) for t in range(2)]
    start = time.perf_counter()
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    two = time.perf_counter() - start
    return one / reps, 2 * one / two


print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
for n in [28_000, 111_000, 444_000, 1_776_000, 7_000_000]:
    for trial in range(2):
        per_call, s = scaling(n, max(20, int(3e7 / n)))
        print(f"N = {n:9,d} ({4 * n / 2**20:6.2f} MiB an array): one thread {1e6 * per_call:8.1f} us a call; "
              f"two threads: scaling {s:.2f}")
