"""conv1 (5x5, 3 -> 192, forward + backward) with its bias as a column of the product (the working tree)
against the bias added and summed apart (conv.py of commit e3b5654, read with git show), and
PyTorch; batch 64 and 128, with and without the fused ReLU, back to back and after 0.2 s of rest (as
bench_ops.py times). Interleaved rounds, median of 9, ms. Run from the repository root."""
import subprocess, sys, time, types
import numpy as np
import torch
sys.path.insert(0, '.')
import minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory

keep_freed_memory()
torch.set_num_threads(2)


def module_at(commit, path, name):
    text = subprocess.run(["git", "show", f"{commit}:{path}"], capture_output=True, text=True, check=True).stdout
    module = types.ModuleType(name)
    exec(compile(text.replace("from ..", "from minidl.").replace("from ._utils", "from minidl.functional._utils"),
                 f"{commit}:{path}", "exec"), module.__dict__)
    return module


old_conv = module_at("e3b5654", "minidl/functional/conv.py", "old_conv")   # (its im2col calls work unchanged)
rng = np.random.default_rng(0)
w = rng.standard_normal((192, 3, 5, 5), dtype=np.float32) * 0.05
wt = minidl.Tensor(w, requires_grad=True)
bt = minidl.Tensor(np.zeros(192, np.float32) + 0.01, requires_grad=True)


def cases(batch):
    x = rng.standard_normal((batch, 32, 32, 3), dtype=np.float32)
    xt = minidl.Tensor(x.transpose(0, 3, 1, 2))
    probe = np.ones((batch, 32, 32, 192), np.float32).transpose(0, 3, 1, 2)
    tx = torch.tensor(x.transpose(0, 3, 1, 2).copy())
    tw, tb = torch.tensor(w, requires_grad=True), torch.full((192,), 0.01, requires_grad=True)
    tprobe = torch.ones(batch, 192, 32, 32)

    def ours(module, activation):
        def run():
            wt.grad = bt.grad = None
            y = module.Conv2d((1, 1), (2, 2), "auto", activation)(xt, wt, bt)
            y.backward(probe)
        return run

    def pytorch(activation):
        def run():
            tw.grad = tb.grad = None
            y = torch.nn.functional.conv2d(tx, tw, tb, padding=2)
            (torch.relu(y) if activation else y).backward(tprobe)
        return run
    return {f"e3b5654 {act or 'none'}": ours(old_conv, act) for act in (None, "relu")} | \
        {f"bias column {act or 'none'}": ours(sys.modules["minidl.functional.conv"], act) for act in (None, "relu")} | \
        {f"PyTorch {act or 'none'}": pytorch(act) for act in (None, "relu")}


for batch in (64, 128):
    runs = cases(batch)
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
        print(f"batch {batch}, rest {rest} s: " + ", ".join(f"{name} {np.median(t) * 1e3:.1f}" for name, t in times.items()))
