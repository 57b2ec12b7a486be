#!/usr/bin/env python
"""Images per second of one NIN training step (forward, backward, SGD update), minidl beside PyTorch.

    python benchmarks/bench_train_step.py                    # NumPy, batch 128, the paper's NIN
    python benchmarks/bench_train_step.py --backend cupy     # CuPy, PyTorch on CUDA beside it
    python benchmarks/bench_train_step.py --width 0.25 --batch 64
    python benchmarks/bench_train_step.py --batch-norm        # the modern variant (BatchNorm2d after every conv)
    python benchmarks/bench_train_step.py --eval --batch 256  # inference: eval mode, no graph
    OPENBLAS_NUM_THREADS=1 python benchmarks/bench_train_step.py --breakdown --clock cpu --no-torch
                                                             # where a step's CPU time goes, on a busy machine

The same network (NIN of NIN.md: dropout 0.5, max pools, GAP; with --batch-norm a
BatchNorm2d after every convolution, which then has no bias) and the same
SGD with momentum 0.9 and weight decay 5e-4, on random float32 data. PyTorch
runs twice: in its default NCHW layout and in channels_last (minidl's inside layout).
The three are timed in turns, one step of each per round, and each row is the median
of --repeats rounds, so a machine whose speed drifts during the run moves all three alike.
--eval times the forward pass alone in eval mode without a graph
(minidl.no_grad(), torch.no_grad()), as prediction runs.
"""
import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidl  # noqa: E402
import minidl.functional as F  # noqa: E402
from minidl import backends, optim  # noqa: E402
from minidl.models import NIN  # noqa: E402
from _timing import add_common_options, load_torch, minidl_sync, setup, table, time_interleaved  # noqa: E402


def torch_nin(torch, width, batch_norm=False):
    nn = torch.nn
    c1, c2, c3 = [[max(1, round(c * width)) for c in b] for b in ((192, 160, 96), (192, 192, 192), (192, 192))]
    c3 = c3 + [10]

    def block(cin, chans, k, p):
        layers, prev = [], cin
        for i, c in enumerate(chans):
            layers.append(nn.Conv2d(prev, c, k if i == 0 else 1, padding=p if i == 0 else 0, bias=not batch_norm))
            layers += [nn.BatchNorm2d(c), nn.ReLU()] if batch_norm else [nn.ReLU()]
            prev = c
        return layers
    return nn.Sequential(*block(3, c1, 5, 2), nn.MaxPool2d(3, 2, 1), nn.Dropout(0.5),
                         *block(c1[-1], c2, 5, 2), nn.MaxPool2d(3, 2, 1), nn.Dropout(0.5),
                         *block(c2[-1], c3, 3, 1), nn.AdaptiveAvgPool2d(1), nn.Flatten())


def torch_step(torch, device, layout, args, x_np, y_np):
    """PyTorch's training step (or, with --eval, its prediction) on the same data, in ``layout``."""
    net = torch_nin(torch, args.width, args.batch_norm).to(device)
    xt = torch.tensor(x_np, device=device)
    if layout == "channels_last":
        net = net.to(memory_format=torch.channels_last)
        xt = xt.contiguous(memory_format=torch.channels_last)
    yt = torch.tensor(y_np, device=device)
    opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def train_step():
        loss = torch.nn.functional.cross_entropy(net(xt), yt)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def predict():
        with torch.no_grad():
            net(xt)

    if args.eval:
        net.eval()
        return predict
    return train_step


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_common_options(parser)
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--width", type=float, default=1.0)
    parser.add_argument("--batch-norm", action="store_true", help="NIN with BatchNorm2d after every convolution")
    parser.add_argument("--eval", action="store_true",
                        help="time inference instead: the forward pass in eval mode without a graph")
    parser.add_argument("--no-winograd", action="store_true",
                        help="minidl's convolutions by im2col only (algorithm 'auto' never picks Winograd): before/after")
    parser.add_argument("--breakdown", action="store_true",
                        help="also time every op's forward and backward apart (waits for the device after each one)")
    parser.add_argument("--by-layer", action="store_true",
                        help="with --breakdown: one row per layer (op and input shape) instead of per kind of op")
    parser.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                        help="the breakdown's clock: wall time, or this process's CPU time (steadier on a shared "
                             "machine; equal to wall time only with one BLAS thread, OPENBLAS_NUM_THREADS=1)")
    parser.add_argument("--kernel-profile", action="store_true",
                        help="CuPy: list the GPU kernels of a step by device time (needs PyTorch's profiler)")
    args = parser.parse_args()
    if args.no_winograd:
        import minidl.functional.conv as conv_module
        conv_module.WINOGRAD_MIN_CHANNELS = float("inf")

    backend = setup(args)
    minidl.manual_seed(0)
    rng = np.random.default_rng(0)
    x_np = rng.random((args.batch, 3, 32, 32), dtype=np.float32)
    y_np = rng.integers(0, 10, args.batch)
    what = "inference (eval, no graph)" if args.eval else "training step"
    print(f"NIN{' with batch norm' if args.batch_norm else ''} {what}, batch {args.batch}, width {args.width}, float32; "
          f"minidl {minidl.__version__} on {backend}; "
          f"{os.cpu_count()} CPU cores; host allocator: {'glibc default' if args.system_allocator else 'keep freed memory'}; "
          f"{time.strftime('%Y-%m-%d %H:%M')}")

    model = NIN(width=args.width, batch_norm=args.batch_norm)
    opt = optim.SGD(model.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)
    x = minidl.Tensor(backends.to_backend(np.ascontiguousarray(x_np.transpose(0, 2, 3, 1)).transpose(0, 3, 1, 2)))
    y = backends.to_backend(y_np)

    def minidl_train_step():
        loss = F.softmax_cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()

    def minidl_predict():
        with minidl.no_grad():
            model(x)

    if args.eval:
        model.eval()
    minidl_step = minidl_predict if args.eval else minidl_train_step

    calls = {"minidl (channels-last inside)": (minidl_step, minidl_sync)}
    torch, device, sync = (None, None, None) if args.no_torch else load_torch(backend, args.tf32)
    if torch is not None:
        for layout in ("contiguous", "channels_last"):
            calls[f"PyTorch {torch.__version__} {device} {layout}"] = (
                torch_step(torch, device, layout, args, x_np, y_np), sync)
    seconds = time_interleaved(calls, args.repeats)          # in turns: a drifting machine moves all alike
    base = args.batch / seconds["minidl (channels-last inside)"]
    rows = [[name, f"{1e3 * t:.1f}", f"{args.batch / t:.1f}", f"{base / (args.batch / t):.2f}"]
            for name, t in seconds.items()]
    print(table(["framework", "ms / step", "images / s", "minidl / this"], rows))
    if args.breakdown:
        print()
        print(op_breakdown(minidl_step, opt, args.repeats, args.clock, args.by_layer))
    if args.kernel_profile:
        print()
        print(kernel_profile(minidl_step, args.repeats) if backend == "cupy" else "kernel profile: CuPy only")


def kernel_profile(step, repeats: int) -> str:
    """Every GPU kernel of ``repeats`` steps, summed by name (PyTorch's profiler sees CuPy's kernels too)."""
    try:
        from torch.profiler import ProfilerActivity, profile
    except ImportError:
        return "kernel profile: PyTorch is not installed"
    step()
    minidl_sync()
    started = time.perf_counter()
    with profile(activities=[ProfilerActivity.CUDA]) as prof:
        for _ in range(repeats):
            step()
        minidl_sync()
    wall = (time.perf_counter() - started) / repeats
    rows, busy, launches = [], 0.0, 0
    for event in prof.key_averages():
        device_us = getattr(event, "self_device_time_total", None)
        if device_us is None:
            device_us = getattr(event, "self_cuda_time_total", 0.0)
        if device_us <= 0:
            continue
        busy += device_us
        launches += event.count
        rows.append((device_us, event.count, event.key))
    if not rows:
        return "kernel profile: the profiler recorded no GPU kernels"
    rows.sort(reverse=True)
    lines = [[name[:90], f"{count / repeats:.0f}", f"{us / 1e3 / repeats:.3f}"] for us, count, name in rows[:40]]
    head = (f"GPU kernels per step: {launches / repeats:.0f} launches, {busy / 1e3 / repeats:.2f} ms busy; "
            f"wall {1e3 * wall:.2f} ms per step (profiled)")
    return head + "\n" + table(["kernel", "calls / step", "ms / step"], lines)


def _all_subclasses(cls):
    for sub in cls.__subclasses__():
        yield sub
        yield from _all_subclasses(sub)


def op_breakdown(step, opt, repeats: int, clock: str = "wall", by_layer: bool = False) -> str:
    """Time each Function's forward and backward (and the optimizer) apart, waiting for the device after each.

    Waiting after every op removes the overlap of host and device work, so the total exceeds a real step;
    the table shows where the time goes, not what a step costs. The last row is what the ops leave
    out (Python, the graph, the backward pass's bookkeeping). ``clock="cpu"`` counts this process's
    CPU time instead of wall time: other programs on the machine then change the figures less.
    ``by_layer``: one row per op and shape of its first input (a convolution's weight shape beside it),
    so that NIN's nine convolutions show apart.
    """
    now = time.process_time if clock == "cpu" else time.perf_counter
    totals = {}

    def layer_name(fn, inputs) -> str:
        shapes = [tuple(getattr(a, "shape", ())) for a in inputs[:2]]
        if type(fn).__name__ == "Conv2d" and len(shapes) == 2:
            (n, c, h, w), (o, _, kh, kw) = shapes
            return f"{type(fn).__name__} {kh}x{kw} {c}->{o} @{h}x{w}"
        return f"{type(fn).__name__} {'x'.join(map(str, shapes[0][1:]))}" if shapes else type(fn).__name__

    def timed(key, method):
        def wrapper(*args, **kwargs):
            if by_layer and key[1] == "forward":
                args[0].bench_layer = layer_name(args[0], args[1:])
            if by_layer and key[1] in ("forward", "backward"):
                key_now = (getattr(args[0], "bench_layer", key[0]), key[1])
            else:
                key_now = key
            minidl_sync()
            start = now()
            result = method(*args, **kwargs)
            minidl_sync()
            totals[key_now] = totals.get(key_now, 0.0) + now() - start
            return result
        return wrapper

    patched = []
    for cls in _all_subclasses(minidl.Function):
        for phase in ("forward", "backward"):
            if phase in vars(cls):
                patched.append((cls, phase, vars(cls)[phase]))
                setattr(cls, phase, timed((cls.__name__, phase), vars(cls)[phase]))
    opt.step = timed((type(opt).__name__, "step"), opt.step)       # an instance attribute hides the method
    try:
        step()
        totals.clear()
        started = now()
        for _ in range(repeats):
            step()
        whole_step = now() - started
    finally:
        for cls, phase, method in patched:
            setattr(cls, phase, method)
        del opt.step
    rows = sorted(totals.items(), key=lambda kv: -kv[1])
    rows.append((("rest of the step", ""), max(0.0, whole_step - sum(totals.values()))))
    whole = sum(t for _, t in rows)
    head = f"{clock} time per step, {repeats} steps, ops timed apart: {1e3 * whole_step / repeats:.1f} ms"
    return head + "\n" + table(["op", "phase", "ms / step", "share"],
                                [[name, phase, f"{1e3 * t / repeats:.2f}", f"{100 * t / whole:.1f}%"]
                                 for (name, phase), t in rows])


if __name__ == "__main__":
    main()
