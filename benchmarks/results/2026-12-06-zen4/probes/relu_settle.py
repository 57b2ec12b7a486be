"""bench_ops' ReLU case (b64), minidl and PyTorch, timed after 0.2 s of rest (as bench_ops) and back to back.
    python benchmarks/results/2026-12-06-zen4/probes/relu_settle.py [kind]
"""
import os, sys, time
import numpy as np
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../../../.."))
sys.path.insert(0, os.path.join(here, "../../.."))
import bench_ops
from _timing import time_interleaved, load_torch
from minidl.kernels.host_memory import keep_freed_memory
from minidl import backends
keep_freed_memory()
kind = sys.argv[1] if len(sys.argv) > 1 else "relu"
name, shape, kind, op_args = next(op for op in bench_ops.NIN_OPS if op[2] == kind)
torch, device, _ = load_torch("numpy")
rng = np.random.default_rng(0)
x = rng.standard_normal((64, *shape), dtype=np.float32)
calls = {"minidl": (bench_ops.minidl_case(kind, op_args, x, rng, np), None),
         "torch": (bench_ops.torch_case(torch, device, kind, op_args, x, rng), None)}
print(name, time.strftime('%Y-%m-%d %H:%M'))
for settle in (0.2, 0.0, 0.2, 0.0):
    t = time_interleaved(calls, repeats=9, settle=settle)
    print(f"settle {settle}: minidl {t['minidl']*1e3:.2f} ms, torch {t['torch']*1e3:.2f} ms, ratio {t['minidl']/t['torch']:.2f}")
