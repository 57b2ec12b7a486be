"""NIN's first max pool (3x3, stride 2, pad 1, 96x32x32, channels-last) at batch 64: minidl's maxima alone,
maxima + winners, and the backward, beside PyTorch's channels_last forward (with indices) and backward.
    python benchmarks/results/2026-12-06-zen4/probes/max_pool_parts.py
"""
import os, sys, time
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
from minidl.kernels import pooling
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
import torch
torch.set_num_threads(2)
def med(fn, k=21):
    fn(); fn(); ts = []
    for _ in range(k):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))
x = np.random.default_rng(0).standard_normal((64, 32, 32, 96), dtype=np.float32)
y, arg = pooling.max_pool_forward(x, 3, 3, 2, 2, 1, 1)
gy = np.ones_like(y)
xt = torch.from_numpy(x).permute(0, 3, 1, 2)                 # a channels_last view, no copy
yt, it = torch.ops.aten.max_pool2d_with_indices(xt, [3, 3], [2, 2], [1, 1])
gyt = torch.ones_like(yt)
print(f"{time.strftime('%Y-%m-%d %H:%M')}; x channels-last {x.shape}, torch input is_contiguous(channels_last): "
      f"{xt.is_contiguous(memory_format=torch.channels_last)}")
for name, fn in [("minidl maxima only", lambda: pooling.max_pool_forward(x, 3, 3, 2, 2, 1, 1, with_argmax=False)),
                 ("minidl maxima + winners", lambda: pooling.max_pool_forward(x, 3, 3, 2, 2, 1, 1)),
                 ("minidl backward", lambda: pooling.max_pool_backward(gy, arg, x.shape, 3, 3, 2, 2, 1, 1)),
                 ("torch forward with indices", lambda: torch.ops.aten.max_pool2d_with_indices(xt, [3, 3], [2, 2], [1, 1])),
                 ("torch backward", lambda: torch.ops.aten.max_pool2d_with_indices_backward(gyt, xt, [3, 3], [2, 2], [1, 1], [1, 1], False, it))]:
    print(f"{name:28s} {med(fn):7.2f} ms")
