"""Jobs that tests/test_distributed_mpi.py starts with ``mpiexec -n N python tests/distributed_jobs.py JOB ...``.

(Not a test module itself: each job is one process of a data-parallel run, on tiny data made here.)

    fit OUT [--epochs E] [--dtype float64] [--compression bf16] [--random] [--resume] [--step-seconds S]
            [--fail-rank R --fail-step K] [--diverge-rank R --diverge-step K]
    sync_bn OUT       SyncBatchNorm on this rank's part of a global batch; rank 0 saves what it gathered
    nccl OUT          NCCL collectives on CuPy arrays (needs a GPU); rank 0 saves what every rank got
    collectives OUT   the MPI communicator's collectives on NumPy arrays; rank 0 saves what every rank got
"""
import argparse
import os
import signal
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import minidl  # noqa: E402
from minidl import data as mdata, distributed, nn, optim  # noqa: E402
from minidl.engine.tensor import Tensor  # noqa: E402
from minidl.models import NIN  # noqa: E402
from minidl.train import fit  # noqa: E402
from minidl.train.loop import Interrupted  # noqa: E402

N_TRAIN, N_TEST, BATCH, EVAL_BATCH = 48, 21, 8, 8


def tiny_datasets():
    """48 training and 21 test 8x8 RGB images of 3 classes; class 0 has a bright red channel (learnable)."""
    rng = np.random.default_rng(0)

    def make(n):
        labels = rng.integers(0, 3, n).astype(np.int64)
        images = rng.integers(0, 256, (n, 8, 8, 3)).astype(np.uint8)
        images[..., 0] = np.where(labels[:, None, None] == 0, 250, images[..., 0])
        images[..., 1] = np.where(labels[:, None, None] == 1, 240, images[..., 1])
        return mdata.ArrayDataset(images, labels, ["a", "b", "c"])
    return make(N_TRAIN), make(N_TEST)


class InFloat64(nn.Module):
    """``module`` computing in float64: its parameters and buffers are cast, and so is its input."""

    def __init__(self, module):
        super().__init__()
        self.module = module
        for p in module.parameters():
            p.data = p.data.astype(np.float64)
        for m in module.modules():
            for name in list(m._buffers):
                m.set_buffer(name, m._buffers[name].astype(np.float64))

    def forward(self, x):
        return self.module(Tensor(x.data.astype(np.float64)))


def fit_job(args, communicator):
    distributed.seed_ranks(0, communicator)
    train, test = tiny_datasets()
    prep = mdata.Standardize().fit(mdata.to_float(train.images))
    augment = mdata.Augment(pad=1, flip=True) if args.random else None       # --random: per-rank random draws
    train_loader = mdata.DataLoader(train, BATCH, shuffle=True, transform=prep, augment=augment)
    test_loader = mdata.DataLoader(test, EVAL_BATCH, shuffle=False, transform=prep)
    model = NIN(num_classes=3, width=0.05, dropout=0.25 if args.random else 0.0)
    if args.dtype == "float64":
        model = InFloat64(model)
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    sched = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=args.epochs * len(train_loader))
    parallel = None
    if communicator.size > 1:
        parallel = distributed.DataParallelTraining(model, communicator, compression=args.compression,
                                                    checksum_every=2, batch_size=BATCH)
    with open(os.path.join(args.out, f"pid.{communicator.rank}"), "w") as f:
        f.write(str(os.getpid()))
    steps = {"n": 0}
    real_step = opt.step

    def step():                                   # the optimizer step, with the faults a test asks for
        real_step()
        steps["n"] += 1
        if args.step_seconds:
            time.sleep(args.step_seconds)
        if steps["n"] == args.fail_step and communicator.rank == args.fail_rank:
            raise RuntimeError(f"injected failure on rank {communicator.rank} at step {steps['n']}")
        if steps["n"] == args.diverge_step and communicator.rank == args.diverge_rank:
            next(iter(model.parameters())).data[...] += 1e-3
    opt.step = step
    config = {"job": "fit", "dtype": args.dtype, "compression": args.compression, "random": args.random}
    try:
        fit(model, opt, train_loader, test_loader, args.epochs, args.out, config, batch_schedule=sched,
            resume=args.resume, show_progress=False, log=print if communicator.rank == 0 else (lambda *a: None),
            distributed=parallel)
    except Interrupted:
        sys.exit(130)


def sync_bn_job(args, communicator):
    """Forward and backward of SyncBatchNorm on this rank's part of a float64 global batch (N = 3 per rank)."""
    rng = np.random.default_rng(7)
    size = communicator.size
    x = rng.normal(2.0, 3.0, (3 * size, 5, 4, 3))                 # global batch (N, C, H, W), mean far from 0
    g = rng.normal(size=x.shape)                                  # upstream gradient dL/dy
    part = slice(3 * communicator.rank, 3 * communicator.rank + 3)
    bn = distributed.SyncBatchNorm(5, communicator=communicator)
    bn.weight.data = rng.normal(size=5)
    bn.bias.data = rng.normal(size=5)
    bn.set_buffer("running_mean", np.full(5, 0.5))
    bn.set_buffer("running_var", np.full(5, 2.0))
    xt = minidl.tensor(x[part], requires_grad=True)
    y = bn(xt)
    y.backward(g[part])
    gathered = communicator.gather_object({"y": y.data, "gx": xt.grad, "gw": bn.weight.grad, "gb": bn.bias.grad,
                                           "mean": bn.running_mean, "var": bn.running_var}, 0)
    if communicator.rank == 0:
        np.savez(os.path.join(args.out, "sync_bn.npz"), x=x, g=g, weight=bn.weight.data, bias=bn.bias.data,
                 y=np.concatenate([r["y"] for r in gathered]), gx=np.concatenate([r["gx"] for r in gathered]),
                 gw=sum(r["gw"] for r in gathered), gb=sum(r["gb"] for r in gathered),
                 mean=np.stack([r["mean"] for r in gathered]), var=np.stack([r["var"] for r in gathered]))


def nccl_job(args, communicator):
    """all_reduce (sum, mean, max, bf16) and broadcast of CuPy arrays through NCCL; every rank's results gathered."""
    import cupy
    rank = communicator.rank
    values = cupy.arange(1000, dtype=cupy.float32) * (rank + 1)
    got = {}
    for op in ("sum", "mean", "max"):
        got[op] = communicator.all_reduce(values.copy(), op).get()
    got["bf16_mean"] = communicator.all_reduce(values.copy(), "mean", compression="bf16").get()
    root = communicator.size - 1                                  # the last rank sends its values, reversed
    got["broadcast"] = communicator.broadcast(values[::-1].copy() if rank == root else values.copy(), root).get()
    counts = communicator.all_reduce(cupy.array([rank + 1], dtype=cupy.int64), "sum").get()
    gathered = communicator.gather_object({"name": communicator.name, "counts": counts, **got}, 0)
    if rank == 0:
        np.savez(os.path.join(args.out, "nccl.npz"), names=np.array([g["name"] for g in gathered]),
                 **{key: np.stack([g[key] for g in gathered]) for key in ("counts", *got)})


def collectives_job(args, communicator):
    """Every collective of the MPI communicator once, on awkward arrays; what each rank got is gathered."""
    rank, size = communicator.rank, communicator.size
    got = {}
    values = np.arange(12, dtype=np.float64).reshape(3, 4) * (rank + 1)
    for op in ("sum", "mean", "max", "min"):
        got[op] = communicator.all_reduce(values.copy(), op)
    strided = np.zeros((4, 6), dtype=np.float32)
    view = strided[:, ::2]                                       # not contiguous: reduced through a copy
    view[...] = rank + 1
    communicator.all_reduce(view, "sum")
    got["strided"] = strided
    got["ints"] = communicator.all_reduce(np.array([rank, 2**40 + rank], dtype=np.int64), "sum")
    x = np.random.default_rng(rank).standard_normal(1001).astype(np.float32)
    got["bf16"] = communicator.all_reduce(x.copy(), "mean", compression="bf16")
    got["fp16"] = communicator.all_reduce(x.copy(), "mean", compression="fp16")
    got["exact"] = communicator.all_reduce(x.copy(), "mean")
    got["broadcast"] = communicator.broadcast(np.full(5, float(rank)), root=size - 1)
    try:
        communicator.all_reduce(np.arange(3), "mean")
        got["mean_of_ints"] = "no error"
    except ValueError as exc:
        got["mean_of_ints"] = str(exc)
    communicator.barrier()
    got["object"] = communicator.broadcast_object({"from": rank}, root=size - 1)["from"]
    gathered = communicator.gather_object(got, 0)
    if rank == 0:
        np.savez(os.path.join(args.out, "collectives.npz"),
                 **{key: np.stack([np.asarray(g[key]) for g in gathered]) for key in got})


def main():
    p = argparse.ArgumentParser()
    p.add_argument("job", choices=["fit", "sync_bn", "nccl", "collectives"])
    p.add_argument("out")
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--dtype", default="float32", choices=["float32", "float64"])
    p.add_argument("--compression", default=None, choices=["bf16", "fp16"])
    p.add_argument("--resume", action="store_true")
    p.add_argument("--random", action="store_true", help="dropout 0.25 and augmentation")
    p.add_argument("--step-seconds", type=float, default=0.0)
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--fail-step", type=int, default=-1)
    p.add_argument("--diverge-rank", type=int, default=-1)
    p.add_argument("--diverge-step", type=int, default=-1)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    if args.job == "nccl":
        minidl.set_backend("cupy")
        distributed.use_local_gpu()
    communicator = distributed.init("nccl" if args.job == "nccl" else "auto")
    minidl.manual_seed(0)
    {"fit": fit_job, "sync_bn": sync_bn_job, "nccl": nccl_job, "collectives": collectives_job}[args.job](
        args, communicator)


if __name__ == "__main__":
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    main()
