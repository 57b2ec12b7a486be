"""ReLU alone at (64, 192, 32, 32) channels-last float32: where minidl's time goes, beside PyTorch.
    python benchmarks/results/2026-12-06-zen4/probes/relu_parts.py
"""
import os, sys, time, subprocess
import numpy as np
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
import minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory
from minidl.kernels.threads import run_blocks
from minidl.kernels.blocking import batch_blocks
from minidl.kernels.relu import relu_into, relu_grad_into
keep_freed_memory()
import torch

def med(fn, n=15):
    fn(); fn()
    ts = []
    for _ in range(n):
        t = time.perf_counter(); fn(); ts.append(time.perf_counter() - t)
    return 1e3 * float(np.median(ts))

rng = np.random.default_rng(0)
x = rng.standard_normal((64, 32, 32, 192), dtype=np.float32)   # memory order (N, H, W, C)
g = np.ones_like(x)
y = np.maximum(x, 0)
blocks = batch_blocks(np, 64, x[0].nbytes)
print(f"commit {subprocess.run(['git','rev-parse','--short','HEAD'],capture_output=True,text=True).stdout.strip()}; "
      f"{time.strftime('%Y-%m-%d %H:%M')}; {len(blocks)} blocks; x {x.nbytes/1e6:.1f} MB")

def fwd_blocks():
    out = np.empty_like(x)
    run_blocks(lambda b: relu_into(x[b], out=out[b]), blocks)
def bwd_blocks():
    out = np.empty_like(x)
    run_blocks(lambda b: relu_grad_into(g[b], y[b], out=out[b]), blocks)
def fwd_plain():
    np.maximum(x, np.float32(0))
def bwd_plain():
    np.multiply(g, y > 0)
def copy_blocks():
    out = np.empty_like(x)
    run_blocks(lambda b: np.copyto(out[b], x[b]), blocks)
def bwd_where_blocks():
    out = np.empty_like(x)
    run_blocks(lambda b: np.copyto(out[b], g[b], where=y[b] > 0) , blocks)

xt = torch.from_numpy(x.transpose(0, 3, 1, 2).copy())
gt = torch.ones_like(xt)
yt = torch.relu(xt)
for name, fn in [("minidl fwd blocks", fwd_blocks), ("minidl bwd blocks", bwd_blocks),
                 ("copy blocks", copy_blocks), ("bwd copyto-where blocks", bwd_where_blocks),
                 ("numpy fwd one thread", fwd_plain), ("numpy bwd one thread", bwd_plain),
                 ("torch relu fwd", lambda: torch.relu(xt)),
                 ("torch threshold_backward", lambda: torch.ops.aten.threshold_backward(gt, yt, 0.0))]:
    print(f"{name:28s} {med(fn):7.2f} ms")

xl = minidl.Tensor(x.transpose(0, 3, 1, 2), requires_grad=True)
def full():
    xl.grad = None
    out = F.relu(xl * 1.0)
    out.backward(g.transpose(0, 3, 1, 2))
print(f"{'minidl F.relu(x*1) fwd+bwd':28s} {med(full):7.2f} ms (includes x*1 and the leaf copy)")
