"""Batch norm (+ReLU) at (128, 192, 32, 32) float32 channels-last, from the minidl tree given as argv[1]:
forward and backward times (min of 9 calls, both cores), and the float32 errors against a float64 run
of the same tree (x with mean 5 and std 3 per channel, so |mean| / sigma = 1.7), as a share of the
largest value of each result. With the ReLU, a value of y within a rounding of 0 can fall on the other
side of it in float32 ("flips": its gradient is then cut in one run and not in the other, which moves dx
there by a whole gradient and dgamma, dbeta by that much); dx's error leaves those cells out."""
import sys
import time

sys.path.insert(0, sys.argv[1])
import numpy as np  # noqa: E402

from minidl.functional.normalization import BatchNorm2d  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402

keep_freed_memory()
rng = np.random.default_rng(0)
n, c = 128, 192
x = np.ascontiguousarray(rng.standard_normal((n, 32, 32, c), dtype=np.float32) * 3 + 5).transpose(0, 3, 1, 2)
gamma, beta = rng.random(c, dtype=np.float32) + 0.5, rng.standard_normal(c, dtype=np.float32)
gy = np.ascontiguousarray(rng.standard_normal((n, 32, 32, c), dtype=np.float32)).transpose(0, 3, 1, 2)


def best_ms(f, k=9):
    f()
    r = 1e9
    for _ in range(k):
        time.sleep(0.1)
        t0 = time.perf_counter()
        f()
        r = min(r, time.perf_counter() - t0)
    return r * 1e3


def run(dtype, act):
    fn = BatchNorm2d(np.zeros(c, dtype), np.ones(c, dtype), True, 0.1, 1e-5, act)
    y = fn.forward(x.astype(dtype), gamma.astype(dtype), beta.astype(dtype))
    return fn, [y, *fn.backward(gy.astype(dtype))]


for act in (None, "relu"):
    fn, got = run(np.float32, act)
    _, ref = run(np.float64, act)
    flips = (got[0] > 0) != (ref[0] > 0)
    got[1], ref[1] = np.where(flips, 0, got[1]), np.where(flips, 0, ref[1])
    errors = " ".join(f"{name} {np.abs(a - b).max() / np.abs(b).max():.1e}"
                      for name, a, b in zip(("y", "dx", "dgamma", "dbeta"), got, ref)) + f" flips {flips.sum()}"
    forward = best_ms(lambda: fn.forward(x, gamma, beta))
    backward = best_ms(lambda: fn.backward(gy))
    print(f"{act or 'none':4s} forward {forward:5.1f} ms  backward {backward:5.1f} ms  "
          f"total {forward + backward:5.1f} ms | errors {errors}", flush=True)
