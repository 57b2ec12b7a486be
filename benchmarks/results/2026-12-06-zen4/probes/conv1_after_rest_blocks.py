"""conv1 (b64) forward + backward after 0.2 s of rest and back to back: when each thread takes each block.
    python benchmarks/results/2026-12-06-zen4/probes/conv1_after_rest_blocks.py
"""
import os, sys, time, threading
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
import minidl, minidl.functional as F
from minidl.kernels import threads
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
rng = np.random.default_rng(0)
x = minidl.Tensor(rng.standard_normal((64, 32, 32, 3), dtype=np.float32).transpose(0, 3, 1, 2))
w = minidl.Tensor(rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05, requires_grad=True)
b = minidl.Tensor(np.zeros(192, np.float32), requires_grad=True)
g = np.ones((64, 32, 32, 192), np.float32).transpose(0, 3, 1, 2)
log = []
original = threads.run_blocks
def traced(fn, blocks):
    def wrapped(block):
        t0 = time.perf_counter(); fn(block); t1 = time.perf_counter()
        log.append(("M" if threading.current_thread() is threading.main_thread() else "W", t0, t1))
    return original(wrapped, blocks)
import minidl.functional.conv as conv_module
conv_module.run_blocks = traced
def step():
    w.grad = b.grad = None
    y = F.conv2d(x, w, b, padding=2); y.backward(g)
step(); step()
for settle in (0.2, 0.0, 0.2, 0.0):
    for _ in range(3):
        time.sleep(settle)
        log.clear()
        t = time.perf_counter(); step(); total = time.perf_counter() - t
        print(f"settle {settle}: {total*1e3:6.1f} ms  " + " ".join(f"{k}{(a - t)*1e3:.1f}-{(z - t)*1e3:.1f}" for k, a, z in log))
