import sys, time, statistics, numpy as np
sys.path.insert(0, __import__('os').path.join(__import__('os').path.dirname(__import__('os').path.abspath(__file__)), '../../../..'))
import minidl, minidl.functional as F
import minidl.functional.conv as cm
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
rng = np.random.default_rng(0)
for name, c, h, o, k, p in (("conv1", 3, 32, 192, 5, 2), ("mlp1-2", 160, 32, 96, 1, 0), ("mlp1-1", 192, 32, 160, 1, 0)):
    x = minidl.tensor(np.ascontiguousarray(rng.standard_normal((64, h, h, c), dtype=np.float32)).transpose(0, 3, 1, 2), requires_grad=c != 3)
    w = minidl.tensor(rng.standard_normal((o, c, k, k), dtype=np.float32), requires_grad=True)
    b = minidl.tensor(np.zeros(o, np.float32), requires_grad=True)
    gy = np.ones((64, o, h, h), np.float32)
    def f():
        y = F.conv2d(x, w, b, padding=p); y.backward(gy)
    times = {1: [], 4: []}
    for m in (1, 4, 1, 4):
        cm.BLOCK_COUNT_MULTIPLE = m; f()
    for r in range(20):
        for m in ((1, 4) if r % 2 == 0 else (4, 1)):
            cm.BLOCK_COUNT_MULTIPLE = m
            s = time.perf_counter(); f(); times[m].append(time.perf_counter() - s)
    a, bb = statistics.median(times[1]) * 1e3, statistics.median(times[4]) * 1e3
    print(f"{name} b64: blocks x1 {a:.1f} ms, x4 {bb:.1f} ms, old/new {a/bb:.3f}", flush=True)
