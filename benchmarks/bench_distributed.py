#!/usr/bin/env python
"""Data-parallel NIN on 2 CPU ranks: the cost of averaging the gradients, and the speed against one process.

    python benchmarks/bench_distributed.py                      # batches 64 and 128, 5 timed steps each
    python benchmarks/bench_distributed.py --batches 128 --steps 10

Started alone, it runs (as subprocesses, on random CIFAR-sized float32 data, the paper's NIN):

1. ``mpiexec -n 2`` ranks with one BLAS thread each: a training step at each *global* batch
   (each rank takes half), timed in parts: forward + backward, waiting for the other rank (a
   barrier), the all-reduce of the gradients (966,986 floats in one bucket), the SGD update;
   then the all-reduce alone, in float32 and with bf16 / fp16 compression;
2. one process with two BLAS threads: the same step on the whole batch.

It prints the medians, the all-reduce's share of a 2-rank step, and images/s of both set-ups.
The CPU may be shared with other work: the load average (``uptime``) is printed beside the figures.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time

import numpy as np

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
sys.path.insert(0, ROOT)


def worker(args):
    """One process of a measurement (alone or one rank of mpiexec); rank 0 prints a JSON line."""
    import minidl
    import minidl.functional as F
    from minidl import distributed, optim
    from minidl.kernels.host_memory import keep_freed_memory
    from minidl.models import NIN
    keep_freed_memory()
    communicator = distributed.init()
    rank, world = communicator.rank, communicator.size
    minidl.manual_seed(rank)
    model = NIN(num_classes=10)
    ddp = distributed.DistributedDataParallel(model, communicator)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    local = args.batch // world
    rng = np.random.default_rng(rank)
    x = rng.random((local, 32, 32, 3), dtype=np.float32).transpose(0, 3, 1, 2)      # channels-last, as loaded
    y = rng.integers(0, 10, local)
    parts = {"forward_backward": [], "wait": [], "all_reduce": [], "update": [], "step": []}
    for step in range(args.warmup + args.steps):
        communicator.barrier()
        t0 = time.perf_counter()
        loss = F.softmax_cross_entropy(model(minidl.Tensor(x)), y)       # the model itself: reduced below, by hand
        opt.zero_grad()
        loss.backward()
        t1 = time.perf_counter()
        communicator.barrier()
        t2 = time.perf_counter()
        ddp.reduce_gradients()
        t3 = time.perf_counter()
        opt.step()
        t4 = time.perf_counter()
        if step >= args.warmup:
            for name, value in (("forward_backward", t1 - t0), ("wait", t2 - t1), ("all_reduce", t3 - t2),
                                ("update", t4 - t3), ("step", t4 - t0)):
                parts[name].append(value)
    result = {"world": world, "batch": args.batch, "threads": os.environ.get("OPENBLAS_NUM_THREADS"),
              "parameters": model.num_parameters(), "buckets": len(ddp.buckets),
              **{name: statistics.median(values) for name, values in parts.items()}}
    if world > 1:
        flat = np.random.default_rng(0).standard_normal(model.num_parameters()).astype(np.float32)
        for kind in (None, "bf16", "fp16"):
            times = []
            for _ in range(args.reduce_repeats):
                buffer = flat.copy()
                communicator.barrier()
                start = time.perf_counter()
                communicator.all_reduce(buffer, "mean", compression=kind)
                times.append(time.perf_counter() - start)
            result[f"all_reduce_alone_{kind or 'float32'}"] = statistics.median(times)
    if rank == 0:
        print("RESULT " + json.dumps(result), flush=True)


def launch(command, threads):
    env = {**os.environ, "OPENBLAS_NUM_THREADS": str(threads), "OMP_NUM_THREADS": str(threads),
           "PYTHONPATH": ROOT}
    out = subprocess.run(command, env=env, capture_output=True, text=True, timeout=3600)
    if out.returncode != 0:
        sys.exit(f"bench_distributed: {' '.join(command)} failed ({out.returncode}):\n{out.stderr}")
    return json.loads(next(line for line in out.stdout.splitlines() if line.startswith("RESULT "))[7:])


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batches", type=int, nargs="+", default=[64, 128], help="global batch sizes")
    parser.add_argument("--steps", type=int, default=5, help="timed steps (after --warmup)")
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--reduce-repeats", type=int, default=20, help="repeats of the all-reduce alone")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--batch", type=int, default=64, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    mpiexec = shutil.which("mpiexec") or shutil.which("mpiexec", path=os.path.dirname(sys.executable))
    if mpiexec is None:
        sys.exit("bench_distributed: needs mpiexec (pip install -e '.[mpi]')")
    me = [sys.executable, os.path.abspath(__file__), "--worker", "--steps", str(args.steps),
          "--warmup", str(args.warmup), "--reduce-repeats", str(args.reduce_repeats)]
    load = [os.getloadavg()]
    rows = []
    for batch in args.batches:
        two = launch([mpiexec, "-n", "2", *me, "--batch", str(batch)], threads=1)
        load.append(os.getloadavg())
        one = launch([*me, "--batch", str(batch)], threads=2)
        load.append(os.getloadavg())
        rows.append((batch, one, two))
    print(f"NIN ({rows[0][1]['parameters']:,} parameters) data-parallel on the CPU, float32, "
          f"{os.cpu_count()} cores; {time.strftime('%Y-%m-%d %H:%M')}; median of {args.steps} steps")
    print("load average (1 min) during the runs: " + ", ".join(f"{l[0]:.2f}" for l in load))
    print()
    print("2 ranks x 1 BLAS thread, per rank (ms)   global batch  fwd+bwd   wait  all-reduce  update    step  "
          "all-reduce share")
    for batch, _, two in rows:
        print(f"{'':40s} {batch:>12d} {1e3 * two['forward_backward']:8.1f} {1e3 * two['wait']:6.1f} "
              f"{1e3 * two['all_reduce']:11.2f} {1e3 * two['update']:7.1f} {1e3 * two['step']:7.1f} "
              f"{100 * two['all_reduce'] / two['step']:15.2f}%")
    print()
    print("the all-reduce alone, 966,986 floats, 2 ranks (ms):  " + "  ".join(
        f"{kind} {1e3 * statistics.median([r[2][f'all_reduce_alone_{kind}'] for r in rows]):.2f}"
        for kind in ("float32", "bf16", "fp16")))
    print()
    print("images / s                  global batch  1 process x 2 threads  2 ranks x 1 thread  speed-up")
    for batch, one, two in rows:
        print(f"{'':28s} {batch:>12d} {batch / one['step']:22.1f} {batch / two['step']:19.1f} "
              f"{one['step'] / two['step']:9.2f}x")


if __name__ == "__main__":
    main()
