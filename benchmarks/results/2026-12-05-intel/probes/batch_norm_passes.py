"""Batch norm (+ReLU) of NIN's largest layer (192x32x32, batch 128), forward and backward: the kernel of
commit e3b5654 (read with git show) against the working tree's, in interleaved rounds, and both against
float64 (the error of y and dx, in units of the largest |value|). Run from the repository root.

batch_norm_passes.log was made with batch_norm_one_pass.diff applied to the working tree (`git apply`):
the statistics in one pass over x (each block centred on its own mean, the blocks combined in float64).
It gave nothing measurable, and the diff was not kept."""
import subprocess, sys, time, types, numpy as np
sys.path.insert(0, '.')
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()


def module_at(commit, path, name):
    text = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    exec(compile(text.replace("from ..", "from minidl.").replace("from ._utils", "from minidl.functional._utils"),
                 f"{commit}:{path}", "exec"), module.__dict__)
    return module


old = module_at("e3b5654", "minidl/functional/normalization.py", "old_batch_norm")
from minidl.functional import normalization as new
rng = np.random.default_rng(0)
x = (3 + 2 * rng.standard_normal((128, 32, 32, 192), dtype=np.float32)).transpose(0, 3, 1, 2)
gy = rng.standard_normal((128, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
g, b = rng.random(192, dtype=np.float32) + 0.5, rng.random(192, dtype=np.float32) - 0.5


def run(module, activation, xs=x, gys=gy, gs=g, bs=b):
    rm, rv = np.zeros(192, xs.dtype), np.ones(192, xs.dtype)
    f = module.BatchNorm2d(rm, rv, True, 0.1, 1e-5, activation); f.needs_grad = (True, True, True)
    time.sleep(0.02); t0 = time.perf_counter(); y = f.forward(xs, gs, bs); t1 = time.perf_counter()
    gx, gg, gb = f.backward(gys); return t1 - t0, time.perf_counter() - t1, y, gx, gg, gb


for activation in ("relu", None):
    ref = run(new, activation, x.astype(np.float64), gy.astype(np.float64), g.astype(np.float64), b.astype(np.float64))
    for name, module in (("e3b5654", old), ("working tree", new)):
        out = run(module, activation)
        errs = [float(np.abs(o - r).max() / np.abs(r).max()) for o, r in zip(out[2:], ref[2:])]
        print(f"{name:13s} {activation or 'none':4s} error/max: y {errs[0]:.1e} dx {errs[1]:.1e} dgamma {errs[2]:.1e} dbeta {errs[3]:.1e}")
    times = {name: [] for name in ("e3b5654", "working tree")}
    for _ in range(9):
        for name, module in (("e3b5654", old), ("working tree", new)):
            times[name].append(run(module, activation)[:2])
    for name, ts in times.items():
        fwd, bwd = np.median(ts, axis=0) * 1e3
        print(f"{name:13s} {activation or 'none':4s} forward {fwd:6.1f} ms  backward {bwd:6.1f} ms  total {fwd + bwd:6.1f} ms")
