#!/usr/bin/env python
"""Forward + backward time of each NIN kernel at NIN's shapes, minidl beside PyTorch.

    python benchmarks/bench_ops.py                     # NumPy backend, batch 64 and 128
    python benchmarks/bench_ops.py --backend cupy      # CuPy (PyTorch on CUDA beside it)
    python benchmarks/bench_ops.py --batch 128 --repeats 3

Inputs are float32 and stored channels-last, as inside a minidl NIN. PyTorch
(if installed) runs the same op on the same data in its default memory format
(NCHW contiguous); 'ratio' is minidl time / PyTorch time (below 1: minidl faster).
The libraries are timed in turns; before each timed call the process rests 0.2 s (so that
the other library's threads stop spinning), then runs the call untimed for 0.05 s (once at
least), so that the op is timed on busy cores, as it runs inside a training step
(_timing.time_interleaved); an op of less than 2 ms (in minidl) is timed over as many calls
in a row as make 2 ms, for both libraries, and the time of one call is shown.
``--after-rest`` times it straight after the rest, one call at a time, instead (the
convolutions; the other ops back to back behind the other library's call), the method of
the runs up to 2026-12-05.
The op's input is an intermediate of a graph, as inside a network: its gradient arrives
and is dropped (a leaf would keep a copy of it in .grad, which no layer of a network pays).
For the convolutions, 'GFLOP/s' is minidl's rate (2 flops per multiply-add of the
products a convolution's forward and backward need) and 'sgemm GFLOP/s' the rate of
the same three matrix products run bare on random arrays: the most the BLAS gives
to im2col. 'algorithm' says how minidl computes a convolution (minidl.functional.conv:
1x1, im2col, or winograd, whose fewer multiplications can beat the sgemm rate: its
GFLOP/s are im2col's flops over its time, an effective rate).
"""
import argparse
import math
import os
import platform
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidl  # noqa: E402
import minidl.functional as F  # noqa: E402
import minidl.functional.conv as conv_module  # noqa: E402
from minidl import backends  # noqa: E402
from minidl.engine.function import Function  # noqa: E402
from minidl.kernels.layout import empty_like_layout  # noqa: E402
from _timing import PRIME_SECONDS, SETTLE_SECONDS, add_common_options, load_torch, minidl_sync, setup, table, time_interleaved  # noqa: E402

# (name, input (C, H, W), kind, arguments)
NIN_OPS = [
    ("conv1 5x5 3->192", (3, 32, 32), "conv", dict(out=192, k=5, pad=2)),
    ("mlp1-1 1x1 192->160", (192, 32, 32), "conv", dict(out=160, k=1, pad=0)),
    ("mlp1-2 1x1 160->96", (160, 32, 32), "conv", dict(out=96, k=1, pad=0)),
    ("conv2 5x5 96->192", (96, 16, 16), "conv", dict(out=192, k=5, pad=2)),
    ("mlp2 1x1 192->192", (192, 16, 16), "conv", dict(out=192, k=1, pad=0)),
    ("conv3 3x3 192->192", (192, 8, 8), "conv", dict(out=192, k=3, pad=1)),
    ("mlp3-2 1x1 192->10", (192, 8, 8), "conv", dict(out=10, k=1, pad=0)),
    ("maxpool 3/2/1 96x32x32", (96, 32, 32), "maxpool", {}),
    ("maxpool 3/2/1 192x16x16", (192, 16, 16), "maxpool", {}),
    ("relu 192x32x32", (192, 32, 32), "relu", {}),
    ("dropout 96x16x16", (96, 16, 16), "dropout", {}),
    ("global avg pool 10x8x8", (10, 8, 8), "gap", {}),
    ("batchnorm 192x32x32", (192, 32, 32), "bn", {}),
    ("softmax cross-entropy", (10,), "ce", {}),
]


class LayerInput(Function):
    """x as a layer's input inside a network: the output of an earlier op, whose gradient ends here."""

    def forward(self, x):
        return x

    def backward(self, gy):
        return (None,)


def minidl_case(kind, args, x_np, rng, xp):
    """A closure that runs forward + backward of one op in minidl."""
    x_cl = x_np if x_np.ndim != 4 else np.ascontiguousarray(x_np.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)
    x_leaf = minidl.Tensor(backends.to_backend(x_cl), requires_grad=kind != "conv" or x_np.shape[1] != 3)
    params = []
    if kind == "conv":
        w = minidl.Tensor(backends.to_backend(rng.standard_normal((args["out"], x_np.shape[1], args["k"], args["k"]), dtype=np.float32) * 0.05), requires_grad=True)
        b = minidl.Tensor(backends.to_backend(np.zeros(args["out"], np.float32)), requires_grad=True)
        params = [w, b]
        fn = lambda x: F.conv2d(x, w, b, padding=args["pad"])  # noqa: E731
    elif kind == "maxpool":
        fn = lambda x: F.max_pool2d(x, 3, 2, 1)  # noqa: E731
    elif kind == "relu":
        fn = lambda x: F.relu(x)  # noqa: E731
    elif kind == "dropout":
        fn = lambda x: F.dropout(x, 0.5, True)  # noqa: E731
    elif kind == "gap":
        fn = lambda x: F.global_avg_pool2d(x)  # noqa: E731
    elif kind == "bn":
        c = x_np.shape[1]
        g = minidl.Tensor(backends.to_backend(np.ones(c, np.float32)), requires_grad=True)
        beta = minidl.Tensor(backends.to_backend(np.zeros(c, np.float32)), requires_grad=True)
        params = [g, beta]
        rm, rv = xp.zeros(c, np.float32), xp.ones(c, np.float32)
        fn = lambda x: F.batch_norm2d(x, rm, rv, g, beta, training=True)  # noqa: E731
    else:
        labels = backends.to_backend(rng.integers(0, 10, x_np.shape[0]))
        fn = lambda x: F.softmax_cross_entropy(x, labels)  # noqa: E731
    probe = None

    def step():
        nonlocal probe
        for t in [x_leaf, *params]:     # as zero_grad() in training: no accumulation into old grads
            t.grad = None
        y = fn(LayerInput()(x_leaf) if x_leaf.requires_grad else x_leaf)
        if probe is None:               # an upstream gradient laid out like y, as in a real backward pass
            probe = empty_like_layout(y.data)
            probe[...] = 1
        y.backward(probe)
    return step


#: an op faster than this is timed over several calls in a row, so that one timing is not mostly noise
MIN_TIMED_SECONDS = 0.002


def calls_in_a_row(call) -> int:
    """How many calls of ``call`` = (fn, sync) make up MIN_TIMED_SECONDS (one, for an op that takes longer)."""
    fn, sync = call
    fn()
    sync()
    start = time.perf_counter()
    fn()
    sync()
    return max(1, math.ceil(MIN_TIMED_SECONDS / max(time.perf_counter() - start, 1e-6)))


def repeated(fn, times: int):
    """``fn`` run ``times`` times in a row, as one call."""
    if times == 1:
        return fn

    def run():
        for _ in range(times):
            fn()
    return run


def conv_flops_and_gemms(args, x_np, rng):
    """(flops of forward + backward, a closure running the same products bare) for a stride-1 'same' conv."""
    n, c, h, w = x_np.shape
    rows, depth, out = n * h * w, c * args["k"] ** 2, args["out"]
    need_x = c != 3                                      # as in minidl_case: the image needs no gradient
    a, wt, g = (backends.to_backend(rng.standard_normal(shape, dtype=np.float32))
                for shape in ((rows, depth), (out, depth), (rows, out)))

    def products():
        a @ wt.T                                         # forward: cols @ W^T
        g.T @ a                                          # dW = dy^T cols
        if need_x:
            g @ wt                                       # dcols = dy W
    return 2 * rows * depth * out * (3 if need_x else 2), products


def conv_algorithm(args, channels: int, backend: str) -> str:
    """How minidl computes this stride-1 convolution under algorithm="auto"."""
    if args["k"] == 1:
        return "1x1"
    return conv_module.choose_algorithm("auto", backend, channels, (args["k"], args["k"]), (1, 1))


def torch_case(torch, device, kind, args, x_np, rng):
    tF = torch.nn.functional
    x = torch.tensor(x_np, device=device, requires_grad=kind != "conv" or x_np.shape[1] != 3)
    params = []
    if kind == "conv":
        w = torch.tensor(rng.standard_normal((args["out"], x_np.shape[1], args["k"], args["k"]), dtype=np.float32) * 0.05, device=device, requires_grad=True)
        b = torch.zeros(args["out"], device=device, requires_grad=True)
        params = [w, b]
        fn = lambda: tF.conv2d(x, w, b, padding=args["pad"])  # noqa: E731
    elif kind == "maxpool":
        fn = lambda: tF.max_pool2d(x, 3, 2, 1)  # noqa: E731
    elif kind == "relu":
        fn = lambda: tF.relu(x)  # noqa: E731
    elif kind == "dropout":
        fn = lambda: tF.dropout(x, 0.5, True)  # noqa: E731
    elif kind == "gap":
        fn = lambda: x.mean(dim=(2, 3))  # noqa: E731
    elif kind == "bn":
        c = x_np.shape[1]
        g = torch.ones(c, device=device, requires_grad=True)
        beta = torch.zeros(c, device=device, requires_grad=True)
        params = [g, beta]
        rm, rv = torch.zeros(c, device=device), torch.ones(c, device=device)
        fn = lambda: tF.batch_norm(x, rm, rv, g, beta, training=True)  # noqa: E731
    else:
        labels = torch.tensor(rng.integers(0, 10, x_np.shape[0]), device=device)
        fn = lambda: tF.cross_entropy(x, labels)  # noqa: E731

    probe = None

    def step():
        nonlocal probe
        for t in [x, *params]:
            t.grad = None
        y = fn()
        if probe is None:               # made once, as for minidl
            probe = torch.ones_like(y)
        y.backward(probe)
    return step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--batch", type=int, nargs="+", default=[64, 128])
    parser.add_argument("--only", default=None, help="run only ops whose name contains this text")
    parser.add_argument("--after-rest", action="store_true",
                        help="time each call right after the rest (convolutions) or back to back behind the other "
                             "library's call (the rest), without an untimed call of its own first: the method of the "
                             "runs up to 2026-12-05")
    args = parser.parse_args()

    backend = setup(args)
    xp = backends.array_module()
    torch, device, torch_sync = (None, None, None) if args.no_torch else load_torch(backend, args.tf32)
    print(f"minidl {minidl.__version__} on {backend}; numpy {np.__version__}; {os.cpu_count()} CPU cores; "
          f"{platform.processor() or platform.machine()}; {time.strftime('%Y-%m-%d %H:%M')}")
    print("timing: " + ("each call right after a 0.2 s rest (convolutions) or back to back (the other ops): --after-rest"
                        if args.after_rest else f"each call after a {SETTLE_SECONDS} s rest and {PRIME_SECONDS} s of "
                                                f"untimed calls of its own; ops under {MIN_TIMED_SECONDS * 1e3:g} ms "
                                                "timed over several calls in a row"))
    if torch is not None:
        print(f"PyTorch {torch.__version__} on {device} ({torch.get_num_threads()} threads), default NCHW layout")
    else:
        print("PyTorch not installed (or no CUDA for it): minidl column only")
    header = ["op (forward+backward)", "batch", "minidl ms"] + (["torch ms", "ratio"] if torch else []) + \
        ["algorithm", "GFLOP/s", "sgemm GFLOP/s"]
    rows = []
    rng = np.random.default_rng(0)
    gemm_rng = np.random.default_rng(1)                  # the bare products' arrays; rng's inputs stay as before
    for batch in args.batch:
        for name, shape, kind, op_args in NIN_OPS:
            if args.only and args.only not in name:
                continue
            x_np = rng.standard_normal((batch, *shape), dtype=np.float32)
            calls = {"minidl": (minidl_case(kind, op_args, x_np, rng, xp), minidl_sync)}
            if torch is not None:
                calls["torch"] = (torch_case(torch, device, kind, op_args, x_np, rng), torch_sync)
            if kind == "conv":
                flops, products = conv_flops_and_gemms(op_args, x_np, gemm_rng)
                calls["gemm"] = (products, minidl_sync)
            # in turns: a drifting machine moves all alike. By default each timed call follows a rest (the
            # other library's threads stop spinning) and untimed calls of its own (the cores are awake
            # and busy, as inside a training step), and an op that takes less than MIN_TIMED_SECONDS is
            # timed over that many calls in a row. --after-rest: the method of the runs up to 2026-12-05
            if args.after_rest:
                seconds = time_interleaved(calls, args.repeats, settle=SETTLE_SECONDS if kind == "conv" else 0)
            else:
                in_a_row = calls_in_a_row(calls["minidl"])
                calls = {lib: (repeated(fn, in_a_row), sync) for lib, (fn, sync) in calls.items()}
                seconds = {lib: t / in_a_row
                           for lib, t in time_interleaved(calls, args.repeats, prime=PRIME_SECONDS).items()}
            t_m = seconds["minidl"]
            row = [name, batch, f"{1e3 * t_m:.2f}"]
            if torch is not None:
                row += [f"{1e3 * seconds['torch']:.2f}", f"{t_m / seconds['torch']:.2f}"]
            if kind == "conv":
                row += [conv_algorithm(op_args, shape[0], backend),
                        f"{flops / t_m / 1e9:.0f}", f"{flops / seconds['gemm'] / 1e9:.0f}"]
            else:
                row += ["", "", ""]
            rows.append(row)
            print("  ".join(map(str, row)), file=sys.stderr, flush=True)
    print(table(header, rows))


if __name__ == "__main__":
    main()
