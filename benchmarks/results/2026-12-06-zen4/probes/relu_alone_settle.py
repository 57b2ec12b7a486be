"""bench_ops' ReLU case (b64): each library alone (no other library's threads around), every time printed,
after 0.2 s of rest and back to back.
    python benchmarks/results/2026-12-06-zen4/probes/relu_alone_settle.py [kind]
"""
import os, sys, time
import numpy as np
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../../../.."))
sys.path.insert(0, os.path.join(here, "../../.."))
import bench_ops
from _timing import load_torch
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
kind = sys.argv[1] if len(sys.argv) > 1 else "relu"
lib = sys.argv[2] if len(sys.argv) > 2 else "minidl"
name, shape, kind, op_args = next(op for op in bench_ops.NIN_OPS if op[2] == kind)
rng = np.random.default_rng(0)
x = rng.standard_normal((64, *shape), dtype=np.float32)
if lib == "minidl+torch":
    torch, device, _ = load_torch("numpy"); torch.relu(torch.ones(10**6)).sum()
if lib.startswith("minidl"):
    fn = bench_ops.minidl_case(kind, op_args, x, rng, np)
else:
    torch, device, _ = load_torch("numpy")
    fn = bench_ops.torch_case(torch, device, kind, op_args, x, rng)
fn(); fn()
print(name, lib, time.strftime('%Y-%m-%d %H:%M'))
for settle in (0.2, 0.0):
    ts = []
    for _ in range(9):
        time.sleep(settle)
        t = time.perf_counter(); fn(); ts.append((time.perf_counter() - t) * 1e3)
    print(f"settle {settle}: " + " ".join(f"{t:.1f}" for t in ts) + f"  median {np.median(ts):.2f}")
