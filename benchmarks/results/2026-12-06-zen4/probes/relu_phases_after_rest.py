"""ReLU alone (b64, channels-last): forward and backward timed apart, after 0.2 s of rest and back to back.
    python benchmarks/results/2026-12-06-zen4/probes/relu_phases_after_rest.py
"""
import os, sys, time
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
import minidl, minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
g = np.ones((64, 32, 32, 192), np.float32).transpose(0, 3, 1, 2)
xl = minidl.Tensor(x, requires_grad=True)
print(time.strftime('%Y-%m-%d %H:%M'))
for settle in (0.2, 0.0, 0.2, 0.0):
    f, b = [], []
    for _ in range(9):
        time.sleep(settle)
        t0 = time.perf_counter(); y = F.relu(xl); t1 = time.perf_counter(); y.backward(g); t2 = time.perf_counter()
        xl.grad = None; del y
        f.append((t1 - t0) * 1e3); b.append((t2 - t1) * 1e3)
    print(f"settle {settle}: forward median {np.median(f):.2f} ms [{min(f):.1f}-{max(f):.1f}], "
          f"backward (+ leaf copy) {np.median(b):.2f} ms [{min(b):.1f}-{max(b):.1f}]")
