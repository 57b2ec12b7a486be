"""The cost of one run_blocks call on two threads (two blocks of 0.145 ms each) back to back and after 0.2 s
of rest, for 1, 10 and 40 calls in a row; median of 9, in ms.

    python benchmarks/results/2026-12-04-zen4/probes/run_blocks_overhead.py
"""
import time, numpy as np
from minidl.kernels import threads
a = np.random.rand(2, 200_000).astype(np.float32); out = np.empty_like(a)
def block(i):
    for _ in range(5): np.multiply(a[i], 1.0001, out=out[i])
def calls(k):
    for _ in range(k): threads.run_blocks(block, [0, 1])
def med(f, rest, r=9):
    f(); ts = []
    for _ in range(r):
        time.sleep(rest); s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)
    return sorted(ts)[r // 2] * 1e3
for k in (1, 10, 40):
    print(f"{k:3d} run_blocks calls: back to back {med(lambda: calls(k), 0):.2f} ms, after 0.2 s rest {med(lambda: calls(k), 0.2):.2f} ms")
t0 = time.perf_counter(); 
for _ in range(200): block(0)
print(f"one block alone {(time.perf_counter()-t0)/200*1e3:.3f} ms")
