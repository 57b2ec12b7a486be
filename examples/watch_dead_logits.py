"""Watch the first training steps of a NIN without batch norm: do its class maps die?

NIN ends with a ReLU after the last 1x1 convolution, then global average pooling,
so a class's logit is the mean of a rectified map: it is exactly 0 when the whole
map is negative, and then no gradient reaches that map any more. If the first
steps push every map of an image below zero, the logits of that image are all 0,
the loss sits at ln(10) = 2.3026 and training stalls.

This script trains a few steps at a small constant learning rate and prints the
loss, the mean |logit| and the share of images whose logits are all exactly 0.
Compare He initialization with PyTorch's layer default and a small Gaussian one:

    python examples/watch_dead_logits.py --data ../shared/datasets/cifar10-jpeg.tar.gz --init he
    python examples/watch_dead_logits.py --data ../shared/datasets/cifar10-jpeg.tar.gz --init uniform
    python examples/watch_dead_logits.py --data ../shared/datasets/cifar10-jpeg.tar.gz --init 0.05
"""
from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))                     # minidl

import minidl  # noqa: E402
import minidl.data as mdata  # noqa: E402
import minidl.functional as F  # noqa: E402
import minidl.optim as optim  # noqa: E402
from minidl.models import NIN  # noqa: E402
from minidl.train.recipe import OptionParser, fail, init_scheme, load_data  # noqa: E402
from minidl.train.tasks import TASKS  # noqa: E402


def main(argv=None) -> None:
    p = OptionParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.add_argument("--data", default=None, help="CIFAR-10: the official archive or an image folder (.tar.gz)")
    p.add_argument("--backend", choices=["auto", "numpy", "cupy"], default="auto")
    p.add_argument("--init", type=init_scheme, default="he", help="he, uniform or a Gaussian std (see --help of "
                   "train_nin_cifar10.py)")
    p.add_argument("--lr", type=float, default=0.005, help="constant learning rate (SGD, Nesterov momentum 0.9)")
    p.add_argument("--steps", type=int, default=150)
    p.add_argument("--batch-size", type=int, default=64)
    p.add_argument("--every", type=int, default=15, help="print every this many steps")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    for name in ("steps", "batch_size", "every"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1, got {getattr(args, name)}")
    if not 0 < args.lr < float("inf"):
        p.error(f"--lr must be a positive finite number, got {args.lr}")
    if args.seed < 0:
        p.error(f"--seed must be at least 0, got {args.seed}")

    try:
        minidl.set_backend(args.backend)
        minidl.manual_seed(args.seed)
        train, _ = load_data(TASKS["cifar10"], args.data, progress=False)
    except (minidl.BackendError, mdata.DownloadError, OSError, ValueError) as exc:
        fail(str(exc))
    picked = np.random.default_rng(args.seed).permutation(len(train))[:args.steps * args.batch_size]
    images, labels = mdata.to_float(train.images[picked]), train.labels[picked]
    standardize = mdata.Standardize().fit(images)
    model = NIN(init=args.init)
    model.train()
    optimizer = optim.SGD(model.parameters(), lr=args.lr, momentum=0.9, nesterov=True, weight_decay=5e-4)
    init = {"he": "He normal", "uniform": "PyTorch's uniform"}.get(args.init, f"Gaussian std {args.init}")
    print(f"NIN without batch norm, {init} init, lr {args.lr}, batch {args.batch_size}; backend {minidl.get_backend()}")
    print(f"{'step':>5}  {'loss':>7}  {'mean |logit|':>12}  {'images with all logits 0':>24}")
    started = time.perf_counter()
    for step in range(args.steps):
        rows = slice(step * args.batch_size, (step + 1) * args.batch_size)
        x = minidl.tensor(standardize(images[rows]).transpose(0, 3, 1, 2))     # NCHW view of NHWC memory
        logits = model(x)
        loss = F.softmax_cross_entropy(logits, minidl.get_array_module(logits.data).asarray(labels[rows]))
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        if step % args.every == 0 or step == args.steps - 1:
            z = minidl.backends.to_numpy(logits.data)
            dead = float((np.abs(z).max(axis=1) == 0).mean())
            print(f"{step:>5}  {float(loss.data):>7.4f}  {np.abs(z).mean():>12.4f}  {dead:>24.0%}", flush=True)
    print(f"{time.perf_counter() - started:.0f} s")


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit(130)
