"""conv3 (3x3, 192 -> 192 at 8x8, with bias and the fused ReLU as in NIN) forward + backward, batch 64 and 128:
Winograd (6x6 tiles, what "auto" picks) against im2col, and PyTorch (conv then relu), back to back and after
0.2 s of rest. Interleaved rounds, median of 9, ms. Run from the repository root."""
import sys, time
import numpy as np
import torch
sys.path.insert(0, '.')
import minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory

keep_freed_memory()
torch.set_num_threads(2)
rng = np.random.default_rng(0)
w = rng.standard_normal((192, 192, 3, 3), dtype=np.float32) * 0.03
for batch in (64, 128):
    x = rng.standard_normal((batch, 8, 8, 192), dtype=np.float32)
    xt = minidl.Tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
    wt, bt = minidl.Tensor(w, requires_grad=True), minidl.Tensor(np.zeros(192, np.float32), requires_grad=True)
    probe = np.ones((batch, 8, 8, 192), np.float32).transpose(0, 3, 1, 2)
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy(), requires_grad=True).contiguous(memory_format=torch.channels_last)
    tw, tb = torch.tensor(w, requires_grad=True), torch.zeros(192, requires_grad=True)
    tprobe = torch.ones(batch, 192, 8, 8).contiguous(memory_format=torch.channels_last)

    def ours(algorithm):
        def run():
            xt.grad = wt.grad = bt.grad = None
            F.conv2d(xt, wt, bt, padding=1, algorithm=algorithm, activation="relu").backward(probe)
        return run

    def pytorch():
        tx.grad = tw.grad = tb.grad = None
        torch.relu(torch.nn.functional.conv2d(tx, tw, tb, padding=1)).backward(tprobe)
    runs = {"winograd": ours("winograd"), "im2col": ours("im2col"), "PyTorch channels_last": pytorch}
    for rest in (0.0, 0.2):
        times = {name: [] for name in runs}
        for fn in runs.values():
            fn()
        for _ in range(9):
            for name, fn in runs.items():
                time.sleep(rest)
                start = time.perf_counter()
                fn()
                times[name].append(time.perf_counter() - start)
        print(f"batch {batch}, rest {rest} s: " + ", ".join(f"{n} {np.median(t) * 1e3:.1f}" for n, t in times.items()))
