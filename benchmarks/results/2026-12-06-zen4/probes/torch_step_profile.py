"""Where PyTorch's NIN training step (channels_last, batch norm) spends its time, by op, beside minidl's
breakdown (bench_train_step.py --breakdown): torch.profiler over 5 steps after 2 warm-up steps.
    python benchmarks/results/2026-12-06-zen4/probes/torch_step_profile.py [batch]
"""
import os, sys, time, argparse
import numpy as np
here = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(here, "../../../..")); sys.path.insert(0, os.path.join(here, "../../.."))
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
import torch
import bench_train_step as bts
batch = int(sys.argv[1]) if len(sys.argv) > 1 else 64
torch.set_num_threads(2)
args = argparse.Namespace(width=1.0, batch_norm=True, eval=False)
rng = np.random.default_rng(0)
x = rng.standard_normal((batch, 3, 32, 32), dtype=np.float32); y = rng.integers(0, 10, batch)
step = bts.torch_step(torch, "cpu", "channels_last", args, x, y)
step(); step()
t = time.perf_counter()
for _ in range(5):
    step()
print(f"batch {batch}, channels_last, batch norm: {(time.perf_counter() - t) / 5 * 1e3:.1f} ms a step unprofiled; {time.strftime('%Y-%m-%d %H:%M')}")
with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as prof:
    for _ in range(5):
        step()
print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=18, max_name_column_width=40))
