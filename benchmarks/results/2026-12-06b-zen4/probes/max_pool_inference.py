"""NIN's two max pools at batch 256 without winners (inference), 2 threads: the plain kernel and the stride
classes, with blocks of 1, 2 and 4 cache blocks, in turns (median of 15 calls, ms).

    python benchmarks/results/2026-12-06b-zen4/probes/max_pool_inference.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
from minidl.kernels import pooling  # noqa: E402
from minidl.kernels.host_memory import keep_freed_memory  # noqa: E402

keep_freed_memory()
WINDOW = (3, 3, 2, 2, 1, 1)
FAST, PLAIN = pooling._max_pool_block, pooling._max_pool_block_by_offsets


def median_of_turns(fns, rounds=15):
    times = [[] for _ in fns]
    for r in range(rounds + 2):
        for i, fn in enumerate(fns):
            t = time.perf_counter()
            fn()
            if r >= 2:
                times[i].append(time.perf_counter() - t)
    return [1e3 * float(np.median(t)) for t in times]


print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
for side, c in [(32, 96), (16, 192)]:
    x = np.maximum(np.random.default_rng(0).standard_normal((256, side, side, c), dtype=np.float32), 0)
    configs = [(name, kernel, blocks) for name, kernel in (("plain", PLAIN), ("classes", FAST)) for blocks in (1, 2, 4)]
    fns = []
    for _, kernel, blocks in configs:
        def forward(kernel=kernel, blocks=blocks):
            pooling._max_pool_block, pooling.POOL_CACHE_BLOCKS = kernel, blocks
            pooling.max_pool_forward(x, *WINDOW, with_argmax=False)
        fns.append(forward)
    times = median_of_turns(fns)
    print(f"{c}x{side}x{side}: " + "  ".join(f"{name} {blocks} cb {t:.2f}" for (name, _, blocks), t in zip(configs, times)))
pooling._max_pool_block, pooling.POOL_CACHE_BLOCKS = FAST, 4
