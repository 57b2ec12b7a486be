#!/usr/bin/env python
"""Images per second of NIN inference on the CPU (eval mode, no graph): minidl, PyTorch and onnxruntime.

    python benchmarks/bench_inference.py                       # the paper's NIN, batches 1, 32 and 256
    python benchmarks/bench_inference.py --threads 1           # every library on one thread
    python benchmarks/bench_inference.py --width 0.25 --batch-norm --batches 1 64

The three run the same weights in the same process: minidl's NIN, the same network as a PyTorch
``nn.Sequential`` (``minidl.models.torch_names``; NCHW and channels_last, under ``torch.inference_mode``)
and the ONNX export of ``minidl.onnx.export`` in onnxruntime. Before timing, each one's logits are
checked against minidl's. A missing PyTorch or onnxruntime is left out of the table.
For each batch size the libraries are timed in turns (one call of each per round, median of
--repeats rounds), so a machine whose speed drifts moves them all alike.
"""
import argparse
import os
import sys


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--batches", type=int, nargs="+", default=[1, 32, 256], help="batch sizes")
    p.add_argument("--width", type=float, default=1.0)
    p.add_argument("--batch-norm", action="store_true")
    p.add_argument("--threads", type=int, default=None,
                   help="threads for every library (OpenBLAS, PyTorch, onnxruntime); default: all cores")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per batch size (the median is shown)")
    p.add_argument("--min-images", type=int, default=256, help="at least this many images per timed call "
                   "(small batches are repeated inside a call, so the clock sees more than a millisecond)")
    return p.parse_args()


args = parse_args()
if args.threads is not None:                  # before NumPy starts OpenBLAS's threads
    for variable in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[variable] = str(args.threads)

import platform  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import minidl  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402
from minidl.models import NIN  # noqa: E402
from minidl.models.torch_names import torch_names, torch_sequential  # noqa: E402
from _timing import table, time_interleaved  # noqa: E402


def minidl_runner(model):
    def infer(x):
        with minidl.no_grad():
            return model(minidl.tensor(x)).data
    return infer


def torch_runners(model, threads):
    try:
        import torch
    except ImportError:
        return {}
    torch.set_num_threads(threads)
    names = torch_names(model)
    runners = {}
    for layout in ("contiguous", "channels_last"):
        net = torch_sequential(model).eval()
        net.load_state_dict({names[k]: torch.from_numpy(np.array(v)) for k, v in model.state_dict().items()},
                            strict=False)
        memory_format = torch.channels_last if layout == "channels_last" else torch.contiguous_format
        net = net.to(memory_format=memory_format)

        def infer(x, net=net, memory_format=memory_format):
            with torch.inference_mode():
                return net(torch.from_numpy(x).contiguous(memory_format=memory_format)).numpy()
        runners[f"PyTorch {torch.__version__} {layout}"] = infer
    return runners


def onnx_runner(model, threads, tmp):
    try:
        import onnxruntime
        import minidl.onnx as monnx
        monnx.require()
    except ImportError:
        return {}
    path = os.path.join(tmp, "nin.onnx")
    monnx.export(model, np.zeros((1, *INPUT), np.float32), path)
    options = onnxruntime.SessionOptions()
    options.intra_op_num_threads = threads
    session = onnxruntime.InferenceSession(path, options, providers=["CPUExecutionProvider"])
    return {f"onnxruntime {onnxruntime.__version__}": lambda x: session.run(["logits"], {"input": x})[0]}


INPUT = (3, 32, 32)


def main():
    import tempfile
    keep_freed_memory()                       # minidl's default in training; it helps the others too
    threads = args.threads or os.cpu_count()
    minidl.manual_seed(0)
    model = NIN(width=args.width, batch_norm=args.batch_norm).eval()
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        runners = {"minidl (channels-last inside)": minidl_runner(model)}
        runners.update(torch_runners(model, threads))
        runners.update(onnx_runner(model, threads, tmp))
        probe = rng.standard_normal((4, *INPUT)).astype(np.float32)
        reference = runners["minidl (channels-last inside)"](probe)
        for name, infer in runners.items():
            error = float(np.abs(infer(probe) - reference).max() / np.abs(reference).max())
            if error > 1e-4:
                raise SystemExit(f"{name}: logits differ from minidl's by {error:.2e} of their scale")

        load = os.getloadavg()
        print(f"NIN inference, width {args.width}{', batch norm' if args.batch_norm else ''}, float32, eval, no graph; "
              f"{threads} thread(s) each; {os.cpu_count()} CPU cores ({platform.machine()}); numpy {np.__version__}; "
              f"{time.strftime('%Y-%m-%d %H:%M')}; load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")
        header = ["framework"] + [f"batch {b} img/s" for b in args.batches] + [f"minidl img/s / this @{args.batches[-1]}"]
        speeds = {name: [] for name in runners}
        for batch in args.batches:               # per batch size, the libraries timed in turns
            x = rng.standard_normal((batch, *INPUT)).astype(np.float32)
            calls = max(1, -(-args.min_images // batch))
            seconds = time_interleaved(
                {name: (lambda infer=infer: [infer(x) for _ in range(calls)], None) for name, infer in runners.items()},
                args.repeats)
            for name in runners:
                speeds[name].append(batch * calls / seconds[name])
        ours = speeds["minidl (channels-last inside)"][-1]
        rows = [[name] + [f"{s:.1f}" for s in row] + [f"{ours / row[-1]:.2f}"] for name, row in speeds.items()]
        print(table(header, rows))
        load = os.getloadavg()
        print(f"load average after: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}")


if __name__ == "__main__":
    main()
