"""conv1 (b64) forward + backward back to back: as it is (each run_blocks call limits the BLAS to one thread
and gives it back its two threads after), and inside one threadpoolctl limit of one thread around all.
    python benchmarks/results/2026-12-06-zen4/probes/conv1_blas_limit.py
"""
import os, sys, time
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
import minidl, minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory
from threadpoolctl import threadpool_limits
keep_freed_memory()
rng = np.random.default_rng(0)
x = minidl.Tensor(rng.standard_normal((64, 32, 32, 3), dtype=np.float32).transpose(0, 3, 1, 2))
w = minidl.Tensor(rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05, requires_grad=True)
g = np.ones((64, 32, 32, 192), np.float32).transpose(0, 3, 1, 2)
def step():
    w.grad = None
    F.conv2d(x, w, None, padding=2).backward(g)
def times(k=15):
    step(); out = []
    for _ in range(k):
        t = time.perf_counter(); step(); out.append((time.perf_counter() - t) * 1e3)
    return out
print(time.strftime('%Y-%m-%d %H:%M'))
for turn in range(3):
    a = times()
    with threadpool_limits(limits=1, user_api="blas"):
        b = times()
    print(f"as it is: median {np.median(a):.1f} ms [{min(a):.1f}-{max(a):.1f}];  BLAS held at 1 thread: median {np.median(b):.1f} ms [{min(b):.1f}-{max(b):.1f}]")
