"""minidl's conv1 (batch 64, no bias, forward + backward) back to back and after 0.2 s of rest, in a
process that has imported PyTorch (--import-torch, used for nothing) or not: median of 5 calls, with
the page faults and context switches of that call (getrusage).

    python benchmarks/results/2026-12-04-zen4/probes/conv1_rest_torch_loaded.py [--import-torch]
"""
import resource
import sys
import time

import numpy as np

import minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory

if "--import-torch" in sys.argv:
    import torch  # noqa: F401
keep_freed_memory()
rng = np.random.default_rng(0)
x = minidl.Tensor(rng.standard_normal((64, 32, 32, 3), dtype=np.float32).transpose(0, 3, 1, 2))
w = minidl.Tensor(rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05, requires_grad=True)
probe = np.ones_like(F.conv2d(x, w, None, padding=2).data)


def step():
    w.grad = None
    F.conv2d(x, w, None, padding=2).backward(probe)


step()
for rest in (0.0, 0.2):
    calls = []
    for _ in range(5):
        time.sleep(rest)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        step()
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
        calls.append((wall * 1e3, after.ru_minflt - before.ru_minflt, after.ru_nvcsw - before.ru_nvcsw,
                      after.ru_nivcsw - before.ru_nivcsw))
    wall, faults, voluntary, involuntary = sorted(calls)[2]
    print(f"{'PyTorch imported' if '--import-torch' in sys.argv else 'no PyTorch      '} rest {rest} s: {wall:5.1f} ms, "
          f"{faults} page faults, {voluntary} voluntary / {involuntary} involuntary context switches")
