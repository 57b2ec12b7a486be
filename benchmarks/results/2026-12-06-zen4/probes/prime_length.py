"""bench_ops' case of one op (b64), minidl and PyTorch in turns: each timed call after a 0.2 s rest and
then untimed calls of its own for at least P ms (P = 0: one call; no prime: straight after the rest).
    python benchmarks/results/2026-12-06-zen4/probes/prime_length.py relu
"""
import os, sys, time, statistics
import numpy as np
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../../../..")); sys.path.insert(0, os.path.join(here, "../../.."))
import bench_ops
from _timing import load_torch
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
kind = sys.argv[1] if len(sys.argv) > 1 else "relu"
name, shape, kind, op_args = next(op for op in bench_ops.NIN_OPS if op[2] == kind or op[0].startswith(kind))
torch, device, _ = load_torch("numpy")
rng = np.random.default_rng(0)
x = rng.standard_normal((64, *shape), dtype=np.float32)
calls = {"minidl": bench_ops.minidl_case(kind, op_args, x, rng, np), "torch": bench_ops.torch_case(torch, device, kind, op_args, x, rng)}
for fn in calls.values():
    fn()
print(name, "batch 64", time.strftime('%Y-%m-%d %H:%M'))
for prime_ms in (None, 0, 50, 200, None, 0, 50, 200):
    times = {k: [] for k in calls}
    for _ in range(7):
        for k, fn in calls.items():
            time.sleep(0.2)
            if prime_ms is not None:
                end = time.perf_counter() + prime_ms / 1e3
                fn()
                while time.perf_counter() < end:
                    fn()
            t = time.perf_counter(); fn(); times[k].append(time.perf_counter() - t)
    m, t = (statistics.median(times[k]) * 1e3 for k in ("minidl", "torch"))
    print(f"prime {'none' if prime_ms is None else str(prime_ms) + ' ms':>7}: minidl {m:6.2f} ms  torch {t:6.2f} ms  ratio {m / t:.2f}")
