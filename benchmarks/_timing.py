"""Shared helpers of the benchmark scripts: timing, and PyTorch when it is installed."""
from __future__ import annotations

import statistics
import time

from minidl import backends


#: seconds of rest before each timed call (see time_interleaved)
SETTLE_SECONDS = 0.2
#: bench_ops: seconds of untimed calls between the rest and each timed call (see time_interleaved)
PRIME_SECONDS = 0.05


def time_interleaved(calls: dict, repeats: int = 5, warmup: int = 1, settle: float = SETTLE_SECONDS,
                     prime: float | None = None) -> dict:
    """Median wall time in seconds of each of ``calls`` (name -> (fn, sync or None)), timed in turns.

    Every round times each call once, one after the other, so a machine that gets slower or faster
    during the run (other programs, the clock of a shared host) moves all of them alike instead of
    whichever happened to run last: the ratios stay fair. Each call is warmed up first.

    Before each timed call the process rests ``settle`` seconds: a multi-threaded OpenBLAS call leaves
    its worker threads spinning for about 0.1 s after it returns (OpenMP runtimes do the same for a
    shorter while), and a call timed right after it would share the cores with them. On 2 cores that
    once made minidl's conv1 look 1.7x slower (110 ms against 64 ms) behind bench_ops' bare products.

    ``prime`` (seconds): after the rest, the call runs untimed, once and again until ``prime`` seconds
    have passed, and is timed right after, on busy cores, as an op runs inside a training step. A call
    timed straight after the rest also pays for cores that have gone idle: on a 2-core VM, minidl's
    conv1 took 35-47 ms that way against 27 ms back to back, PyTorch's 26 against 24
    (benchmarks/results/2026-12-06-zen4/probes/relu_alone_settle.log, prime_length.log).
    """
    calls = {name: (fn, sync or (lambda: None)) for name, (fn, sync) in calls.items()}
    for fn, sync in calls.values():
        for _ in range(warmup):
            fn()
        sync()
    times = {name: [] for name in calls}
    for _ in range(repeats):
        for name, (fn, sync) in calls.items():
            time.sleep(settle)
            if prime is not None:
                busy_until = time.perf_counter() + prime
                fn()
                sync()
                while time.perf_counter() < busy_until:
                    fn()
                    sync()
            start = time.perf_counter()
            fn()
            sync()
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def add_common_options(parser) -> None:
    """Options every benchmark takes."""
    parser.add_argument("--backend", default="numpy", choices=["numpy", "cupy"])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--no-torch", action="store_true", help="skip the PyTorch reference")
    parser.add_argument("--system-allocator", action="store_true",
                        help="leave glibc's allocator as it is (minidl/kernels/host_memory.py explains the difference)")
    parser.add_argument("--tf32", action="store_true",
                        help="CuPy: TF32 tensor cores for float32 products, and PyTorch's TF32 switches on as well "
                             "(otherwise both run strict float32)")


def setup(args) -> str:
    """Select the backend and the host allocator; returns the backend's name."""
    from minidl.kernels.host_memory import keep_freed_memory
    backend = backends.set_backend(args.backend)
    backends.set_tf32(args.tf32)
    if not args.system_allocator:
        keep_freed_memory()      # minidl's training default on Linux; it speeds up PyTorch in this process too
    return backend


def minidl_sync():
    backends.synchronize()


def load_torch(backend: str, tf32: bool = False):
    """(torch, device, sync) or (None, None, None) when PyTorch is missing or lacks the device.

    On CUDA, PyTorch's TF32 switches follow ``tf32`` so that both libraries do the same arithmetic.
    """
    try:
        import torch
    except ImportError:
        return None, None, None
    if backend == "cupy":
        if not torch.cuda.is_available():
            return None, None, None
        torch.backends.cudnn.benchmark = True
        torch.backends.cudnn.allow_tf32 = tf32
        torch.backends.cuda.matmul.allow_tf32 = tf32
        return torch, "cuda", torch.cuda.synchronize
    import os
    torch.set_num_threads(os.cpu_count() or 1)
    return torch, "cpu", lambda: None


def table(header, rows) -> str:
    widths = [max(len(str(h)), *(len(str(r[i])) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(str(h).rjust(w) if i else str(h).ljust(w) for i, (h, w) in enumerate(zip(header, widths)))
    out = [line, "-" * len(line)]
    for r in rows:
        out.append("  ".join(str(c).rjust(w) if i else str(c).ljust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)
