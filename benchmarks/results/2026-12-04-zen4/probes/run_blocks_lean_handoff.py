"""A leaner hand-off than run_blocks' ThreadPoolExecutor + threadpoolctl limit, as a lead (not in minidl): one worker
with a SimpleQueue inbox, the BLAS thread count set through threadpoolctl's controller directly. Two blocks of
~0.1 ms each, 10 and 40 calls back to back, median of 9, in ms.

    python benchmarks/results/2026-12-04-zen4/probes/run_blocks_lean_handoff.py
"""
import time, threading, queue, numpy as np
from minidl.kernels import threads
from threadpoolctl import ThreadpoolController
ctl = ThreadpoolController().select(user_api="blas").lib_controllers[0]
inbox, outbox = queue.SimpleQueue(), queue.SimpleQueue()
def worker():
    while True:
        fn, blocks = inbox.get()
        try:
            for b in blocks: fn(b)
            outbox.put(None)
        except BaseException as e:
            outbox.put(e)
threading.Thread(target=worker, daemon=True).start()
def lean_run_blocks(fn, blocks):
    before = ctl.num_threads
    ctl.set_num_threads(1)
    try:
        half = len(blocks) // 2
        inbox.put((fn, blocks[half:]))
        for b in blocks[:half]: fn(b)
        err = outbox.get()
        if err: raise err
    finally:
        ctl.set_num_threads(before)
a = np.random.rand(2, 200_000).astype(np.float32); out = np.empty_like(a)
def block(i):
    for _ in range(5): np.multiply(a[i], 1.0001, out=out[i])
def med(f, rest, r=9):
    f(); ts = []
    for _ in range(r):
        time.sleep(rest); s = time.perf_counter(); f(); ts.append(time.perf_counter() - s)
    return sorted(ts)[r // 2] * 1e3
for name, rb in (("run_blocks", threads.run_blocks), ("lean", lean_run_blocks)):
    for k in (10, 40):
        print(f"{name:10s} {k} calls: back to back {med(lambda: [rb(block, [0, 1]) for _ in range(k)], 0):.2f} ms")
t0 = time.perf_counter()
for _ in range(400): block(0)
print(f"one block {(time.perf_counter()-t0)/400*1e3:.3f} ms")
