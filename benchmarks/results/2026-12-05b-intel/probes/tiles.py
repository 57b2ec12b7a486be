"""Batch norm's normalize pass, y = max((x - mean) * scale + shift, 0) over a (131072, 192) float32 matrix
in blocks of 1 MiB on both threads: the vectors as full (rows, C) copies (the code before 2026-12-05b)
against tiles of r rows seen as one row of r*C numbers (minidl/kernels/tiles.py), and the variance pass
(x - mean, then the column dots) the same two ways."""
import time

import numpy as np

import minidl.kernels.host_memory as host_memory
from minidl.kernels.blocking import batch_blocks, scratch_array
from minidl.kernels.columns import blocked_column_sums, column_dots
from minidl.kernels.threads import run_blocks

host_memory.keep_freed_memory()


def best_ms(f, n=7):
    f()
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


M, C = 131072, 192
rng = np.random.default_rng(0)
x2 = rng.standard_normal((M, C), dtype=np.float32)
y = np.empty_like(x2)
blocks = batch_blocks(np, M, C * 4)
rows = blocks[0].stop
mean, scale, shift = (rng.random(C, dtype=np.float32) for _ in range(3))


def full_rows():
    m, s, b, z = np.tile(mean, (rows, 1)), np.tile(scale, (rows, 1)), np.tile(shift, (rows, 1)), np.zeros((rows, C), np.float32)

    def normalize(blk):
        out = y[blk]
        n = out.shape[0]
        np.subtract(x2[blk], m[:n], out=out)
        np.multiply(out, s[:n], out=out)
        np.add(out, b[:n], out=out)
        np.maximum(out, z[:n], out=out)

    def squares(blk):
        c = scratch_array(np, "c", x2[blk].shape, np.float32)
        np.subtract(x2[blk], m[:c.shape[0]], out=c)
        return column_dots(c, c)
    return normalize, squares


def tiles(r):
    m, s, b, z = (np.tile(v, r)[None, :] for v in (mean, scale, shift, np.zeros(C, np.float32)))

    def pieces(a, out):
        n = a.shape[0]
        k = n - n % r
        yield a[:k].reshape(-1, r * C), out[:k].reshape(-1, r * C), r * C
        if k < n:
            yield a[k:].reshape(1, -1), out[k:].reshape(1, -1), (n - k) * C

    def normalize(blk):
        for xa, oa, w in pieces(x2[blk], y[blk]):
            np.subtract(xa, m[:, :w], out=oa)
            np.multiply(oa, s[:, :w], out=oa)
            np.add(oa, b[:, :w], out=oa)
            np.maximum(oa, z[:, :w], out=oa)

    def squares(blk):
        c = scratch_array(np, "c", x2[blk].shape, np.float32)
        for xa, ca, w in pieces(x2[blk], c):
            np.subtract(xa, m[:, :w], out=ca)
        return column_dots(c, c)
    return normalize, squares


print(f"(131072, 192) float32, {len(blocks)} blocks of {rows} rows, 2 threads; best of 7, ms")
for rep in range(2):
    for name, (normalize, squares) in [("full rows", full_rows())] + [(f"tiles of {r} rows", tiles(r)) for r in (16, 32, 64, 128)]:
        print(f"{name:18s} normalize {best_ms(lambda: run_blocks(normalize, blocks)):6.1f}   "
              f"variance pass {best_ms(lambda: blocked_column_sums(np, blocks, squares, C)):6.1f}", flush=True)
