"""NumPy's sums over a short axis against the BLAS, at the shapes of NIN's global average pooling
(N, 8*8, 10) and of its loss (N, 10): what kernels/pooling.py and kernels/columns.py quote.

    python benchmarks/results/2026-12-04-zen4/probes/gap_and_loss.py
"""
import timeit

import numpy as np


def microseconds(stmt, names, number=2000):
    return min(timeit.repeat(stmt, globals=names, number=number, repeat=7)) / number * 1e6


for n in (64, 128):
    rng = np.random.default_rng(0)
    rows = rng.random((n, 64, 10), dtype=np.float32)
    gy = rng.random((n, 10), dtype=np.float32)
    gx = np.empty((n, 64, 10), np.float32)
    logits = rng.random((n, 10), dtype=np.float32)
    names = dict(np=np, rows=rows, gy=gy, gx=gx, logits=logits, ones_row=np.ones((1, 64), np.float32),
                 ones=np.ones(10, np.float32))
    print(f"batch {n}")
    for what, stmt in [("GAP forward, NumPy's mean over the middle axis", "rows.mean(axis=1)"),
                       ("GAP forward, ones (1, 64) @ rows, then / 64", "np.matmul(ones_row, rows) / np.float32(64)"),
                       ("GAP backward, assignment through a broadcast view", "gx[...] = gy[:, None, :]"),
                       ("GAP backward, np.repeat", "np.repeat(gy[:, None, :], 64, axis=1)"),
                       ("loss, NumPy's sum along the rows", "logits.sum(axis=1)"),
                       ("loss, logits @ ones(10)", "logits @ ones"),
                       ("loss, NumPy's max along the rows", "logits.max(axis=1, keepdims=True)"),
                       ("loss, mean(dtype=float32) of N numbers", "gy[:, 0].mean(dtype=np.float32)"),
                       ("loss, sum(dtype=float32) / N", "gy[:, 0].sum(dtype=np.float32) / np.float32(64)")]:
        print(f"  {what:55s} {microseconds(stmt, names):7.1f} us")
    for what, stmt in [("loss, NumPy's max along the rows of the transposed copy",
                        "np.maximum.reduce(np.ascontiguousarray(logits.T))")]:
        print(f"  {what:55s} {microseconds(stmt, names):7.1f} us")
