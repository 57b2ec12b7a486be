"""The weight gradient's product of NIN's im2col and 1x1 layers, per block as conv.py runs it (2 threads
sharing the blocks, single-threaded BLAS in each): dW = dy^T @ cols (what conv.py computes) against
dW^T = cols^T @ dy (the same sums, the other operand order). In turns, median of 20 calls. Not kept: 6% on
conv1's product on this BLAS, nothing on the 1x1 layers.

    python benchmarks/results/2026-12-06b-zen4/probes/conv_weight_grad_operand_order.py
"""
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "../../../.."))
from minidl.kernels.threads import run_blocks  # noqa: E402

print(f"{time.strftime('%Y-%m-%d %H:%M')}; numpy {np.__version__}")
rng = np.random.default_rng(0)
for rows, n_blocks, depth, out in [(8192, 8, 76, 192), (8192, 16, 76, 192), (4096, 16, 192, 160),
                                   (4096, 16, 160, 96), (4096, 4, 192, 192)]:
    cols = rng.standard_normal((rows * n_blocks, depth), dtype=np.float32)
    gy = rng.standard_normal((rows * n_blocks, out), dtype=np.float32)
    dw, dw_t = np.empty((n_blocks, out, depth), np.float32), np.empty((n_blocks, depth, out), np.float32)

    def dy_t_cols(b):
        r = slice(b * rows, (b + 1) * rows)
        np.matmul(gy[r].T, cols[r], out=dw[b])

    def cols_t_dy(b):
        r = slice(b * rows, (b + 1) * rows)
        np.matmul(cols[r].T, gy[r], out=dw_t[b])
    times = {dy_t_cols: [], cols_t_dy: []}
    for _ in range(20):
        for fn in times:
            t = time.perf_counter()
            run_blocks(fn, list(range(n_blocks)))
            times[fn].append(time.perf_counter() - t)
    a, b = (1e3 * float(np.median(times[f])) for f in (dy_t_cols, cols_t_dy))
    print(f"{n_blocks} blocks of {rows} rows, {depth} -> {out}: dy^T @ cols {a:.2f} ms, cols^T @ dy {b:.2f} ms")
