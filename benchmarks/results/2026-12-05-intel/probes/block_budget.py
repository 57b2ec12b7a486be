"""The cache block's size on this machine (2 MiB of L2 per core): batch norm + ReLU (192x32x32, batch 128),
max pooling (96x32x32 at batch 128) and ReLU's backward, forward and backward, with
minidl.kernels.blocking.CACHE_BLOCK_BYTES set to each budget in turn (interleaved rounds).
Run from the repository root. Bigger blocks won here, though three
1 MiB arrays overflow the 2 MiB L2: with small blocks the two threads pay more in handing each other
Python's lock between NumPy calls than they save in the cache."""
import sys, time, numpy as np
sys.path.insert(0, '.')
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
from minidl.kernels import blocking
from minidl.functional.normalization import BatchNorm2d
import minidl, minidl.functional as F

rng = np.random.default_rng(0)
x = rng.standard_normal((128, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
gy = rng.standard_normal((128, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
g, b = rng.random(192, dtype=np.float32), rng.random(192, dtype=np.float32) - 0.5
rm, rv = np.zeros(192, np.float32), np.ones(192, np.float32)
xp_ = rng.standard_normal((128, 32, 32, 96), dtype=np.float32).transpose(0, 3, 1, 2)

def bn():
    f = BatchNorm2d(rm, rv, True, 0.1, 1e-5, "relu"); f.needs_grad = (True, True, True)
    time.sleep(0.02); t0 = time.perf_counter(); f.forward(x, g, b); t1 = time.perf_counter()
    f.backward(gy); return t1 - t0, time.perf_counter() - t1

def pool():
    t = minidl.Tensor(xp_, requires_grad=True)
    time.sleep(0.02); t0 = time.perf_counter(); y = F.max_pool2d(t, 3, 2, 1); t1 = time.perf_counter()
    y.backward(minidl.Tensor(np.ones_like(y.data))); return t1 - t0, time.perf_counter() - t1

budgets = [1 << 17, 1 << 18, 1 << 19, 1 << 20]
results = {(k, bud): [] for k in ("bn+relu", "maxpool") for bud in budgets}
for rnd in range(7):
    for bud in budgets:
        blocking.CACHE_BLOCK_BYTES = bud
        for name, fn in (("bn+relu", bn), ("maxpool", pool)):
            fn(); results[(name, bud)].append(fn())
for (name, bud), ts in results.items():
    fwd, bwd = np.median(ts, axis=0) * 1e3
    print(f"{name:8s} budget {bud >> 10:5d} KiB  forward {fwd:6.1f} ms  backward {bwd:6.1f} ms")
