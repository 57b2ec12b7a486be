"""conv1 (5x5, 3->192, 32x32, pad 2) at batch 64: forward, backward and their parts, back to back, beside
PyTorch's forward and backward.
    python benchmarks/results/2026-12-06-zen4/probes/conv1_parts.py [batch]
"""
import os, sys, time
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
import minidl, minidl.functional as F
from minidl.functional import conv as conv_module
from minidl.kernels.host_memory import keep_freed_memory
from minidl.kernels.im2col import im2col
from minidl.kernels.threads import run_blocks, single_threaded_blas
keep_freed_memory()
import torch
n = int(sys.argv[1]) if len(sys.argv) > 1 else 64
rng = np.random.default_rng(0)
x_nhwc = rng.standard_normal((n, 32, 32, 3), dtype=np.float32)
x = minidl.Tensor(x_nhwc.transpose(0, 3, 1, 2))
w = minidl.Tensor(rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05, requires_grad=True)
b = minidl.Tensor(np.zeros(192, np.float32), requires_grad=True)
g = np.ones((n, 32, 32, 192), np.float32).transpose(0, 3, 1, 2)

def med(fn, k=11):
    fn(); ts = []
    for _ in range(k):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))
state = {}
def fwd():
    state["y"] = F.conv2d(x, w, b, padding=2)
def bwd():
    w.grad = b.grad = None
    y = F.conv2d(x, w, b, padding=2); y.backward(g)
t_f = med(fwd)
t_fb = med(bwd)
fn = conv_module.Conv2d(padding=(2, 2)); fn.needs_grad = (False, True, True)
fn.forward(x.data, w.data, b.data)
blocks = fn._blocks()
def cols_only():
    def one(images):
        fn._columns(np, images)
    run_blocks(one, blocks)
rows, width = n * 1024, 76
a = rng.standard_normal((rows, width), dtype=np.float32); wm = rng.standard_normal((192, width), dtype=np.float32)
gy = rng.standard_normal((rows, 192), dtype=np.float32)
xt = torch.tensor(x_nhwc.transpose(0, 3, 1, 2).copy()); wt = torch.tensor(w.data, requires_grad=True); bt = torch.zeros(192, requires_grad=True)
gt = torch.ones(n, 192, 32, 32)
def tfwd(): torch.nn.functional.conv2d(xt, wt, bt, padding=2)
def tfb():
    wt.grad = bt.grad = None
    torch.nn.functional.conv2d(xt, wt, bt, padding=2).backward(gt)
print(f"batch {n}; {len(blocks)} blocks; {time.strftime('%Y-%m-%d %H:%M')}")
for name, t in [("minidl forward", t_f), ("minidl forward+backward", t_fb),
                ("  im2col of all blocks (2 threads)", med(cols_only)),
                ("  bare a @ w.T (rows x 76 x 192, BLAS threads)", med(lambda: a @ wm.T)),
                ("  bare gy.T @ a (192 x rows x 76, BLAS threads)", med(lambda: gy.T @ a)),
                ("torch forward", med(tfwd)), ("torch forward+backward", med(tfb))]:
    print(f"{name:48s} {t:7.2f} ms")
