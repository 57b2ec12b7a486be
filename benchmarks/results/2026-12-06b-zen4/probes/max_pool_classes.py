"""NIN's two max pools (3x3, stride 2, pad 1, channels-last): the kernels on stride classes beside the plain
ones (offset by offset on the strided input), in one process, turn about.

    python benchmarks/results/2026-12-06b-zen4/probes/max_pool_classes.py

Part 1, one core, one block of nb images (the block's input in the cache after the first call).
Part 2, the whole layer at batch 64 and 128 on 1 and 2 threads, both kernels with blocks of 1, 2, 4 and 8
cache blocks (kernels/pooling.py POOL_CACHE_BLOCKS; the plain kernels ran with 1 before). PyTorch's
channels_last kernels (2 threads) beside them.
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
from minidl.kernels import pooling, threads  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402

keep_freed_memory()
WINDOW = (3, 3, 2, 2, 1, 1)
FAST = (pooling._max_pool_block, pooling._max_pool_grad_block)
PLAIN = (pooling._max_pool_block_by_offsets, pooling._max_pool_grad_block_by_offsets)


def median_of_turns(fns, rounds=21):
    """Median seconds of each fn, the fns called in turn each round (after two warm-up rounds)."""
    times = [[] for _ in fns]
    for r in range(rounds + 2):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            if r >= 2:
                times[i].append(time.perf_counter() - t)
    return [float(np.median(t)) for t in times]


def relu_like(shape, seed=0):
    return np.maximum(np.random.default_rng(seed).standard_normal(shape, dtype=np.float32), 0)


def use(kernels, cache_blocks):
    pooling._max_pool_block, pooling._max_pool_grad_block = kernels
    pooling.POOL_CACHE_BLOCKS = cache_blocks


print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
print("part 1: one block, one core; us an image")
print(f"{'input':14s} {'nb':>3s} {'plain fwd':>10s} {'classes fwd':>12s} {'plain bwd':>10s} {'classes bwd':>12s}")
for side, c in [(32, 96), (16, 192)]:
    for nb in (1, 2, 4, 8):
        x = relu_like((nb, side, side, c))
        out, argmax = np.empty((nb, side // 2, side // 2, c), np.float32), np.empty((nb, side // 2, side // 2, c), np.int8)
        PLAIN[0](x, out, argmax, WINDOW)
        gy = np.random.default_rng(1).standard_normal(out.shape, dtype=np.float32)
        gx = np.empty_like(x)
        t = median_of_turns([lambda: PLAIN[0](x, out, argmax, WINDOW), lambda: FAST[0](x, out, argmax, WINDOW),
                             lambda: PLAIN[1](gy, argmax, gx, WINDOW), lambda: FAST[1](gy, argmax, gx, WINDOW)], 101)
        print(f"{c}x{side}x{side:<6d} {nb:3d} " + " ".join(f"{1e6 * v / nb:{w}.1f}" for v, w in zip(t, (10, 12, 10, 12))))

try:
    import torch
    torch.set_num_threads(2)
except ImportError:
    torch = None
print("\npart 2: the whole layer, ms (forward with winners, backward)")
for n in (64, 128):
    for side, c in [(32, 96), (16, 192)]:
        x = relu_like((n, side, side, c))
        _, argmax = pooling.max_pool_forward(x, *WINDOW)
        gy = np.random.default_rng(1).standard_normal(argmax.shape, dtype=np.float32)
        configs = [(f"{name}, {b} cache block{'s' * (b > 1)}", kernels, b)
                   for name, kernels in (("plain", PLAIN), ("classes", FAST)) for b in (1, 2, 4, 8)]
        for n_threads in (1, 2):
            threads.set_num_threads(n_threads)
            fns = []
            for _, kernels, blocks in configs:
                def forward(kernels=kernels, blocks=blocks):
                    use(kernels, blocks)
                    pooling.max_pool_forward(x, *WINDOW)

                def backward(kernels=kernels, blocks=blocks):
                    use(kernels, blocks)
                    pooling.max_pool_backward(gy, argmax, x.shape, *WINDOW)
                fns += [forward, backward]
            t = median_of_turns(fns)
            for i, (name, _, _) in enumerate(configs):
                print(f"batch {n:3d} {c}x{side}x{side}  {n_threads} thread{'s' * (n_threads > 1)}  {name:24s} "
                      f"forward {1e3 * t[2 * i]:6.2f}  backward {1e3 * t[2 * i + 1]:6.2f}")
        if torch is not None:
            xt = torch.from_numpy(x).permute(0, 3, 1, 2)
            yt, it = torch.ops.aten.max_pool2d_with_indices(xt, [3, 3], [2, 2], [1, 1])
            gyt = torch.from_numpy(gy).permute(0, 3, 1, 2)
            t = median_of_turns([lambda: torch.ops.aten.max_pool2d_with_indices(xt, [3, 3], [2, 2], [1, 1]),
                                 lambda: torch.ops.aten.max_pool2d_with_indices_backward(gyt, xt, [3, 3], [2, 2], [1, 1], [1, 1], False, it)])
            print(f"batch {n:3d} {c}x{side}x{side}  2 threads  {'PyTorch channels_last':24s} "
                  f"forward {1e3 * t[0]:6.2f}  backward {1e3 * t[1]:6.2f}")
use(FAST, 2)
