"""conv1 (5x5, 3 -> 192, batch 64, forward + backward) in minidl and PyTorch, called back to back and
after 0.2 s of rest (as bench_ops.py times every call), with and without its bias. Median of 9, in ms.

    python benchmarks/results/2026-12-04-zen4/probes/conv1_rest.py
"""
import time

import numpy as np
import torch

import minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory

keep_freed_memory()
torch.set_num_threads(2)
rng = np.random.default_rng(0)
x = rng.standard_normal((64, 32, 32, 3), dtype=np.float32)
w = rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05
xt = minidl.Tensor(x.transpose(0, 3, 1, 2))
wt = minidl.Tensor(w, requires_grad=True)
bt = minidl.Tensor(np.zeros(192, np.float32), requires_grad=True)
probe = np.ones_like(F.conv2d(xt, wt, bt, padding=2).data)
tx = torch.tensor(x.transpose(0, 3, 1, 2).copy())
tw = torch.tensor(w, requires_grad=True)
tb = torch.zeros(192, requires_grad=True)
tprobe = torch.ones(64, 192, 32, 32)


def minidl_with_bias():
    wt.grad = bt.grad = None
    F.conv2d(xt, wt, bt, padding=2).backward(probe)


def minidl_without_bias():
    wt.grad = None
    F.conv2d(xt, wt, None, padding=2).backward(probe)


def pytorch_with_bias():
    tw.grad = tb.grad = None
    torch.nn.functional.conv2d(tx, tw, tb, padding=2).backward(tprobe)


def median_ms(fn, rest, repeats=9):
    fn()
    times = []
    for _ in range(repeats):
        time.sleep(rest)
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return sorted(times)[repeats // 2] * 1e3


for rest in (0.0, 0.2):
    print(f"rest {rest} s: minidl with bias {median_ms(minidl_with_bias, rest):5.1f}, without "
          f"{median_ms(minidl_without_bias, rest):5.1f}; PyTorch with bias {median_ms(pytorch_with_bias, rest):5.1f}")
