"""How much a leaner batch norm + ReLU would save (192x32x32, batch 128, forward and backward): minidl's kernel
(BatchNorm2d of minidl/functional/normalization.py) against a sketch with every shortcut this machine rewards:
statistics in one pass, y = x * scale + (beta - mean * scale) (3 ops, not 4, but float32 rounding of
|x * scale| instead of |x - mean| near y = 0), (C,) vectors broadcast instead of repeated rows, ReLU against
a scalar 0, dx from x * a instead of (x - mean) * a. Interleaved rounds, median of 9, ms. Run from the
repository root."""
import sys, time, numpy as np
sys.path.insert(0, '.')
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
from minidl.kernels.blocking import batch_blocks, scratch_array
from minidl.kernels.threads import run_blocks
from minidl.kernels.columns import blocked_column_sums, column_sums, column_dots
from minidl.functional.normalization import BatchNorm2d
M, C = 128*32*32, 192
rng = np.random.default_rng(0)
x4 = (3 + 2 * rng.standard_normal((128, 32, 32, 192), dtype=np.float32))
g4 = rng.standard_normal((128, 32, 32, 192), dtype=np.float32)
x2 = x4.reshape(-1, C); g2 = g4.reshape(-1, C)
w, bta = rng.random(C, dtype=np.float32) + 0.5, rng.random(C, dtype=np.float32) - 0.5
blocks = batch_blocks(np, M, x2[0].nbytes)
def lean():
    # forward
    def mom(b):
        x = x2[b]; n = x.shape[0]; s = column_sums(x); c = scratch_array(np, "c", x.shape, x.dtype)
        np.subtract(x, (s / n), out=c); s64 = s.astype(np.float64)
        return np.concatenate([s64, column_dots(c, c) + s64 * s64 / n])
    both = blocked_column_sums(np, blocks, mom, 2 * C); mean = both[:C] / M; var = both[C:] / M - mean * mean
    inv = (1 / np.sqrt(var + 1e-5)).astype(np.float32); scale = w * inv; mean = mean.astype(np.float32)
    shift = bta - mean * scale
    y = np.empty_like(x2)
    def norm(b):
        out = y[b]; np.multiply(x2[b], scale, out=out); np.add(out, shift, out=out); np.maximum(out, 0, out=out)
    run_blocks(norm, blocks)
    t1 = time.perf_counter()
    gx = np.empty_like(g2)
    def sums(b):
        g = gx[b]; np.multiply(g2[b], y[b] > 0, out=g)
        c = scratch_array(np, "c", g.shape, g.dtype); np.subtract(x2[b], mean, out=c)
        return np.concatenate([column_sums(g), column_dots(g, c)])
    both = blocked_column_sums(np, blocks, sums, 2 * C).astype(np.float32)
    gb, gdc = both[:C], both[C:]; gg = gdc * inv
    a = -scale * inv * gg / M; bb = -scale * gb / M - mean * a
    def ig(b):
        out = gx[b]; c = scratch_array(np, "c", out.shape, out.dtype)
        np.multiply(x2[b], a, out=c); np.multiply(out, scale, out=out); np.add(out, c, out=out); np.add(out, bb, out=out)
    run_blocks(ig, blocks)
    return t1
def cur():
    f = BatchNorm2d(np.zeros(C, np.float32), np.ones(C, np.float32), True, 0.1, 1e-5, "relu"); f.needs_grad = (True,)*3
    f.forward(x4.transpose(0, 3, 1, 2), w, bta); t1 = time.perf_counter(); f.backward(g4.transpose(0, 3, 1, 2)); return t1
res = {"current": [], "lean": []}
for _ in range(9):
    for name, fn in (("current", cur), ("lean", lean)):
        time.sleep(0.02); t0 = time.perf_counter(); t1 = fn(); t2 = time.perf_counter(); res[name].append((t1 - t0, t2 - t1))
for k, v in res.items():
    f, b = np.median(v, axis=0) * 1e3; print(f"{k:8s} fwd {f:6.1f} bwd {b:6.1f} total {f+b:6.1f}")
