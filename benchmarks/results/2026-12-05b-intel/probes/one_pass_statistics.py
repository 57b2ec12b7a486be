"""Batch norm's statistics over a (131072, 192) float32 matrix (mean 5, std 3) in blocks of 1 MiB on both
threads: two passes over x (the sums, then the squares about the mean, as minidl does) against one pass
(each block centred on its own mean with a tile, its sums of centred values and squares combined with the
other blocks' in float64: Chan, Golub and LeVeque's pairwise update). Errors against float64, then times."""
import time

import numpy as np

import minidl.kernels.host_memory as host_memory
from minidl.kernels.blocking import batch_blocks, scratch_array
from minidl.kernels.columns import blocked_column_sums, column_dots, column_sums
from minidl.kernels.threads import run_blocks
from minidl.kernels.tiles import Tile, tile_rows

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
x2 = (np.random.default_rng(0).standard_normal((M, C)) * 3 + 5).astype(np.float32)
blocks = batch_blocks(np, M, C * 4, multiple=tile_rows(C))


def two_passes():
    mean = (blocked_column_sums(np, blocks, lambda b: column_sums(x2[b]), C) / M).astype(np.float32)
    tile = Tile(mean)

    def squares(b):
        centered = scratch_array(np, "c", x2[b].shape, np.float32)
        tile.apply(np.subtract, x2[b], centered)
        return column_dots(centered, centered)
    return mean, blocked_column_sums(np, blocks, squares, C) / M


def one_pass():
    parts = np.empty((len(blocks), 3, C))

    def part(k):
        x = x2[blocks[k]]
        block_mean = (column_sums(x) / x.shape[0]).astype(np.float32)
        centered = scratch_array(np, "c", x.shape, np.float32)
        Tile(block_mean).apply(np.subtract, x, centered)
        parts[k] = block_mean, column_sums(centered), column_dots(centered, centered)
    run_blocks(part, list(range(len(blocks))))
    n = np.array([b.stop - b.start for b in blocks], float)[:, None]
    mean = (n * parts[:, 0] + parts[:, 1]).sum(axis=0) / M
    shift = parts[:, 0] - mean
    return mean, (parts[:, 2] + 2 * shift * parts[:, 1] + n * shift * shift).sum(axis=0) / M


x64 = x2.astype(np.float64)
for f in (two_passes, one_pass):
    mean, var = f()
    print(f"{f.__name__:10s} largest error: mean {np.abs(mean - x64.mean(0)).max():.1e}, "
          f"variance (relative) {(np.abs(var - x64.var(0)) / x64.var(0)).max():.1e}")
for rep in range(3):
    print(f"two passes {best_ms(two_passes):6.1f} ms   one pass {best_ms(one_pass):6.1f} ms", flush=True)
