"""The largest batch-norm layer of NIN (192x32x32 at batch 128), forward and backward: batch norm then
ReLU as landed on 2026-12-02 (the two files of commit 0c55fb3, read with git show) against today's fused op.
Run from the repository root."""
import subprocess, sys, time, types, numpy as np
sys.path.insert(0, '.')
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()


def module_at(commit, path, name):
    """The module ``path`` as it was at ``commit``, its relative imports made absolute."""
    text = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    exec(compile(text.replace("from ..", "from minidl.").replace("from ._utils", "from minidl.functional._utils"),
                 f"{commit}:{path}", "exec"), module.__dict__)
    return module


old_batch_norm = module_at("0c55fb3", "minidl/functional/normalization.py", "old_batch_norm")
old_relu = module_at("0c55fb3", "minidl/functional/activation.py", "old_relu")
from minidl.functional.normalization import BatchNorm2d
rng = np.random.default_rng(0)
x = rng.standard_normal((128, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
gy = rng.standard_normal((128, 32, 32, 192), dtype=np.float32).transpose(0, 3, 1, 2)
g, b = rng.random(192, dtype=np.float32), rng.random(192, dtype=np.float32) - 0.5
rm, rv = np.zeros(192, np.float32), np.ones(192, np.float32)
def old():
    f = old_batch_norm.BatchNorm2d(rm, rv, True, 0.1, 1e-5); f.needs_grad = (True, True, True)
    r = old_relu.ReLU(); r.needs_grad = (True,)
    time.sleep(0.05); t0 = time.perf_counter(); z = r.forward(f.forward(x, g, b)); t1 = time.perf_counter()
    f.backward(r.backward(gy)); return t1 - t0, time.perf_counter() - t1
def new():
    f = BatchNorm2d(rm, rv, True, 0.1, 1e-5, "relu"); f.needs_grad = (True, True, True)
    time.sleep(0.05); t0 = time.perf_counter(); f.forward(x, g, b); t1 = time.perf_counter()
    f.backward(gy); return t1 - t0, time.perf_counter() - t1
for name, fn in (("batch norm then ReLU (0c55fb3)", old), ("fused (today)", new)) * 3:
    fn(); fwd, bwd = np.median([fn() for _ in range(7)], axis=0) * 1e3
    print(f"{name:32s} forward {fwd:6.1f} ms  backward {bwd:6.1f} ms")
