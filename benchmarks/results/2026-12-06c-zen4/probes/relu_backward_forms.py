"""ReLU's backward, dL/dx = dL/dy where y > 0: every way NumPy can write it, and what a fused kernel would cost.

    python benchmarks/results/2026-12-06c-zen4/probes/relu_backward_forms.py

Part 1, in the cache: one thread, one block of 65,536 float32 values (256 KiB per array) run again and
again, in ns a value. Each form is first checked against the shipped one (minidl/kernels/relu.py) on
y = relu(x) with exact zeros. The last rows are the floor: a plain float32 multiply reads two arrays and
writes one, as a fused mask-multiply kernel (PyTorch's threshold_backward) would.
Part 2, the whole layer in main memory: NIN's 192x32x32 at batch 64 and 128, channels-last, both
cores (minidl's blocks, minidl.kernels.threads) against PyTorch's threshold_backward and relu on its
threads, timed in turns after a rest and 0.05 s of untimed calls (bench_ops' method); and a variant
whose forward also keeps the bool mask x > 0, so that the backward is one mixed multiply reading a
byte a value instead of y's four.
"""
import os
import subprocess
import sys
import time

import numpy as np

root = os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../..")
sys.path.insert(0, root)
sys.path.insert(0, os.path.join(root, "benchmarks"))
from _timing import PRIME_SECONDS, load_torch, time_interleaved  # noqa: E402
from minidl.kernels.blocking import batch_blocks  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402
from minidl.kernels.relu import relu_grad_into, relu_into  # noqa: E402
from minidl.kernels.threads import run_blocks  # noqa: E402

keep_freed_memory()
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=root).stdout.strip()
print(f"commit {commit}; {time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")

# ---- part 1: in the cache, one thread
n = 65536
rng = np.random.default_rng(0)
y = np.maximum(rng.standard_normal(n, dtype=np.float32), 0)          # half exact zeros, as after a ReLU
gy = rng.standard_normal(n, dtype=np.float32)
gx, mask, mask_f, mask_i = np.empty_like(gy), np.empty(n, bool), np.empty_like(gy), np.empty(n, np.int32)
y_i, gy_i, gx_i = y.view(np.int32), gy.view(np.int32), gx.view(np.int32)
zero, one = np.zeros(1, np.float32), np.ones(1, np.float32)
expected = np.empty_like(gy)
relu_grad_into(gy, y, out=expected)

forms = {
    "shipped: multiply(gy, y > 0)": lambda: relu_grad_into(gy, y, out=gx),
    "greater into a kept bool, then multiply": lambda: (np.greater(y, zero, out=mask), np.multiply(gy, mask, out=gx)),
    "bool mask cast to float32, then multiply": lambda: (np.greater(y, zero, out=mask), np.copyto(mask_f, mask),
                                                         np.multiply(gy, mask_f, out=gx)),
    "bits: gy & (-y_int >> 31)": lambda: (np.negative(y_i, out=mask_i), np.right_shift(mask_i, 31, out=mask_i),
                                          np.bitwise_and(gy_i, mask_i, out=gx_i)),
    "ceil(min(y, 1)) * gy": lambda: (np.minimum(y, one, out=mask_f), np.ceil(mask_f, out=mask_f),
                                     np.multiply(gy, mask_f, out=gx)),
    "sign(y) * gy": lambda: (np.sign(y, out=mask_f), np.multiply(gy, mask_f, out=gx)),
    "where(y > 0, gy, 0)": lambda: np.copyto(gx, np.where(y > 0, gy, zero)),
    "zeros, then copyto(gx, gy, where=y > 0)": lambda: (gx.fill(0), np.copyto(gx, gy, where=y > 0)),
    "copy, then putmask(gx, y <= 0, 0)": lambda: (np.copyto(gx, gy), np.less_equal(y, zero, out=mask),
                                                  np.putmask(gx, mask, 0)),
    "zeros, then multiply(gy, 1, where=y > 0)": lambda: (gx.fill(0), np.greater(y, zero, out=mask),
                                                         np.multiply(gy, one, out=gx, where=mask)),
    "floor: multiply(gy, y), two float32 arrays": lambda: np.multiply(gy, y, out=gx),
    "floor: copyto(gx, gy)": lambda: np.copyto(gx, gy),
    "forward for scale: maximum(x, 0) into another block": lambda: relu_into(gy, out=gx),
}


def ns_per_value(fn, calls=3000):
    fn()
    best = float("inf")
    for _ in range(5):                        # the best of 5 runs of `calls` calls: the cache-resident speed
        start = time.perf_counter()
        for _ in range(calls):
            fn()
        best = min(best, (time.perf_counter() - start) / calls / n * 1e9)
    return best


print("\npart 1: in the cache, one thread, 65,536 values a block")
print(f"{'form':52s} {'equal':>6s} {'ns/value':>9s}")
for name, fn in forms.items():
    fn()
    equal = "-" if name.startswith(("floor", "forward")) else ("yes" if np.array_equal(gx, expected) else "NO")
    print(f"{name:52s} {equal:>6s} {ns_per_value(fn):9.3f}")

# ---- part 2: the whole layer in main memory, both cores, beside PyTorch
torch, _, _ = load_torch("numpy")
print(f"\npart 2: NIN's 192x32x32, channels-last float32, both cores; PyTorch {torch.__version__ if torch else 'missing'}"
      f" ({torch.get_num_threads() if torch else 0} threads); median of 15 turns, ms")
for batch in (64, 128):
    x = np.random.default_rng(1).standard_normal((batch, 32, 32, 192), dtype=np.float32)
    y_big = np.maximum(x, 0)
    g_big = np.random.default_rng(2).standard_normal(x.shape, dtype=np.float32)
    blocks = batch_blocks(np, batch, x[0].nbytes)

    def minidl_forward():
        out = np.empty_like(x)
        run_blocks(lambda b: relu_into(x[b], out=out[b]), blocks)

    def minidl_backward():
        out = np.empty_like(x)
        run_blocks(lambda b: relu_grad_into(g_big[b], y_big[b], out=out[b]), blocks)

    def floor_backward():                   # the same blocks, a plain float32 multiply: the fused kernel's traffic
        out = np.empty_like(x)
        run_blocks(lambda b: np.multiply(g_big[b], y_big[b], out=out[b]), blocks)

    kept_mask = np.empty(x.shape, bool)

    def forward_keeping_mask():             # a variant: the forward also writes the bool mask x > 0 ...
        out = np.empty_like(x)
        run_blocks(lambda b: (relu_into(x[b], out=out[b]), np.greater(x[b], 0, out=kept_mask[b])), blocks)

    def backward_from_mask():               # ... so that the backward reads 1 byte a value instead of y's 4
        out = np.empty_like(x)
        run_blocks(lambda b: np.multiply(g_big[b], kept_mask[b], out=out[b]), blocks)

    calls = {"minidl forward": minidl_forward, "minidl backward": minidl_backward,
             "floor backward (multiply)": floor_backward,
             "variant forward + bool mask": forward_keeping_mask, "variant backward from mask": backward_from_mask}
    if torch is not None:
        xt, gt = torch.from_numpy(x), torch.from_numpy(g_big)
        yt = torch.relu(xt)
        calls["torch relu"] = lambda: torch.relu(xt)
        calls["torch threshold_backward"] = lambda: torch.ops.aten.threshold_backward(gt, yt, 0.0)
    times = time_interleaved({k: (v, None) for k, v in calls.items()}, 15, prime=PRIME_SECONDS)
    print(f"batch {batch}: " + "  ".join(f"{k} {1e3 * v:.2f}" for k, v in times.items()))
