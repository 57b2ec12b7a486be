"""Max pooling's blocks (stride classes, 2 threads): cut as batch_blocks cuts them (full blocks, a shorter
last one) or into a number of blocks that is a multiple of 4, of sizes within one (as the convolution's
blocks are). In turns, median of 21 calls, ms forward / backward. Not kept: within the noise at the first
pool (a first run, not logged, had the even blocks slower), some gain at the second pool's 4 blocks of
21, 21, 21 and 1 images at batch 64, about 1 ms a step.

    python benchmarks/results/2026-12-06b-zen4/probes/max_pool_even_blocks.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
from minidl.kernels import blocking, pooling  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402

keep_freed_memory()
WINDOW = (3, 3, 2, 2, 1, 1)


def median_of_turns(fns, rounds=21):
    times = [[] for _ in fns]
    for r in range(rounds + 2):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            if r >= 2:
                times[i].append(time.perf_counter() - t)
    return [1e3 * float(np.median(t)) for t in times]


def budget():
    return pooling.POOL_CACHE_BLOCKS * blocking.CACHE_BLOCK_BYTES


def uneven(n, bytes_per_image):
    return blocking.batch_blocks(np, n, bytes_per_image, budget())


def even(n, bytes_per_image):
    count = -(-n // max(1, budget() // bytes_per_image))
    count = min(n, -(-count // 4) * 4)
    cuts = [n * i // count for i in range(count + 1)]
    return [slice(a, b) for a, b in zip(cuts, cuts[1:])]


print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
for n in (64, 128):
    for side, c in [(32, 96), (16, 192)]:
        x = np.maximum(np.random.default_rng(0).standard_normal((n, side, side, c), dtype=np.float32), 0)
        _, argmax = pooling.max_pool_forward(x, *WINDOW)
        gy = np.random.default_rng(1).standard_normal(argmax.shape, dtype=np.float32)
        fns, names = [], []
        for cache_blocks in (2, 4):
            for name, cut in (("uneven", uneven), ("even", even)):
                def forward(cache_blocks=cache_blocks, cut=cut):
                    pooling.POOL_CACHE_BLOCKS, pooling._pool_blocks = cache_blocks, cut
                    pooling.max_pool_forward(x, *WINDOW)

                def backward(cache_blocks=cache_blocks, cut=cut):
                    pooling.POOL_CACHE_BLOCKS, pooling._pool_blocks = cache_blocks, cut
                    pooling.max_pool_backward(gy, argmax, x.shape, *WINDOW)
                fns += [forward, backward]
                names.append(f"{cache_blocks} cb {name} ({len(cut(n, x[0].nbytes))} blocks)")
        t = median_of_turns(fns)
        print(f"batch {n} {c}x{side}x{side}: " + "  ".join(f"{name}: {t[2 * i]:.2f} / {t[2 * i + 1]:.2f}"
                                                        for i, name in enumerate(names)))
