"""As conv3_blocks.py, forward and backward with a graph (training), batch 64: blocks as today (at least 4)
against the rule before (one block when the batch fits)."""
import sys, time, numpy as np
sys.path.insert(0, '.')
import minidl, minidl.functional as F, minidl.functional.conv as conv
from minidl.kernels.host_memory import keep_freed_memory
from minidl.kernels.layout import empty_like_layout
keep_freed_memory()
import os
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from conv3_blocks import before, rule  # noqa: E402  (the two rules)
n = 64
x = minidl.Tensor(np.random.rand(n, 8, 8, 192).astype(np.float32).transpose(0, 3, 1, 2), requires_grad=True)
w = minidl.Tensor((np.random.rand(192, 192, 3, 3).astype(np.float32) - .5) * .1, requires_grad=True)
for name, chunks in (("one block if it fits", before), ("at least 4 (today)", rule)) * 2:
    conv._image_chunks = chunks
    ts = []
    for _ in range(15):
        x.grad = w.grad = None
        time.sleep(0.05); t0 = time.perf_counter(); y = F.conv2d(x, w, padding=1); t1 = time.perf_counter()
        gy = empty_like_layout(y.data); gy[...] = 1
        t2 = time.perf_counter(); y.backward(gy); ts.append((t1 - t0, time.perf_counter() - t2))
    f, b = np.median(ts, axis=0) * 1e3
    print(f"batch {n}  {name:22s} forward {f:5.1f} ms  backward {b:5.1f} ms")
conv._image_chunks = rule
