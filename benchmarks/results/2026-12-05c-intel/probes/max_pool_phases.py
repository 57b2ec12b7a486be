"""Max pooling with the input cut into its sw column phases x[:, :, p::sw] first (contiguous copies), so that
every window offset is a slice with long contiguous rows (W/sw * C numbers) instead of runs of C: checked
equal to minidl.kernels.pooling (values, winners, gradients) on 300 random configurations, then timed at
NIN's two pools, batch 128 (min of 9, ms). Tried, not kept: slower."""
import time, numpy as np
from minidl.kernels import pooling
from minidl.kernels.pooling import offset_slices
from minidl.kernels.blocking import batch_blocks, scratch_array
from minidl.kernels.threads import run_blocks
from minidl.kernels.im2col import conv_output_size
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()

def phase_offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w):
    """(k, out index, phase p, index into phase p) with phase p = x[:, :, p::sw]."""
    res = []
    for i in range(kh):
        oh, ih = offset_slices(i, ph, sh, h, out_h)
        for j in range(kw):
            ow, iw = offset_slices(j, pw, sw, w, out_w)
            if oh is None or ow is None:
                continue
            p = iw.start % sw
            q = slice(iw.start // sw, iw.start // sw + (ow.stop - ow.start))
            res.append((i * kw + j, (slice(None), oh, ow), p, (slice(None), ih, q)))
    return res

def fwd(x, kh, kw, sh, sw, ph, pw, with_argmax=True):
    n, h, w, c = x.shape
    out_h, out_w = conv_output_size(h, kh, sh, ph), conv_output_size(w, kw, sw, pw)
    offs = phase_offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w)
    out = np.empty((n, out_h, out_w, c), x.dtype)
    argmax = np.empty((n, out_h, out_w, c), np.int8) if with_argmax else None
    def pool(b):
        xb = x[b]; nb = xb.shape[0]
        phases = []
        for p in range(sw):
            src = xb[:, :, p::sw]
            buf = scratch_array(np, f"phase{p}", src.shape, x.dtype); np.copyto(buf, src); phases.append(buf)
        o_ = out[b]; o_[...] = -np.inf
        for k, o, p, i in offs:
            np.maximum(o_[o], phases[p][i], out=o_[o])
        if argmax is None: return
        a = argmax[b]; a[...] = 0
        hit_all = scratch_array(np, "hit", o_.shape, np.bool_)
        for k, o, p, i in reversed(offs):
            wv, hit = a[o], hit_all[o]
            np.equal(phases[p][i], o_[o], out=hit)
            wv += hit.view(np.int8) * (np.int8(k) - wv)
    run_blocks(pool, batch_blocks(np, n, x[0].nbytes))
    return out, argmax

def bwd(gy, argmax, input_shape, kh, kw, sh, sw, ph, pw):
    n, h, w, c = input_shape
    _, out_h, out_w, _ = gy.shape
    offs = phase_offsets(kh, kw, sh, sw, ph, pw, h, w, out_h, out_w)
    gx = np.empty(input_shape, gy.dtype)
    def route(b):
        g, a, gxb = gy[b], argmax[b], gx[b]
        nb = g.shape[0]
        phases = []
        for p in range(sw):
            shape = gxb[:, :, p::sw].shape
            buf = scratch_array(np, f"gphase{p}", shape, gy.dtype); buf[...] = 0; phases.append(buf)
        for k, o, p, i in offs:
            phases[p][i] += g[o] * (a[o] == k)
        for p in range(sw):
            gxb[:, :, p::sw] = phases[p]
    run_blocks(route, batch_blocks(np, n, gx[0].nbytes))
    return gx

def best(f, k=9):
    f(); r = 1e9
    for _ in range(k):
        time.sleep(0.05); t0 = time.perf_counter(); f(); r = min(r, time.perf_counter() - t0)
    return r * 1e3
rng = np.random.default_rng(1)
bad = 0
for trial in range(300):
    kh, kw = rng.integers(1, 5, 2); sh, sw = rng.integers(1, 4, 2); ph, pw = rng.integers(0, kh // 2 + 1), rng.integers(0, kw // 2 + 1)
    n, c = rng.integers(1, 4), rng.integers(1, 5)
    h, w = rng.integers(kh, 10), rng.integers(kw, 10)
    x = rng.integers(-2, 3, (n, h, w, c)).astype(np.float64)
    if trial % 5 == 0: x[rng.random(x.shape) < 0.3] = -np.inf
    args = (int(kh), int(kw), int(sh), int(sw), int(ph), int(pw))
    y0, a0 = pooling.max_pool_forward(x, *args); y1, a1 = fwd(x, *args)
    gy = rng.standard_normal(y0.shape)
    g0 = pooling.max_pool_backward(gy, a0, x.shape, *args); g1 = bwd(gy, a1, x.shape, *args)
    if not (np.array_equal(y0, y1) and np.array_equal(a0, a1) and np.array_equal(g0, g1)): bad += 1; print("bad", args, x.shape)
print("mismatches", bad)
a = (3, 3, 2, 2, 1, 1)
for n, h, c in [(128, 32, 96), (128, 16, 192)]:
    x = np.maximum(rng.standard_normal((n, h, h, c), dtype=np.float32), 0)
    y, am = pooling.max_pool_forward(x, *a); gy = rng.standard_normal(y.shape, dtype=np.float32)
    print(f"{c}x{h}x{h}: old fwd {best(lambda: pooling.max_pool_forward(x, *a)):5.1f} no-argmax {best(lambda: pooling.max_pool_forward(x, *a, with_argmax=False)):5.1f} bwd {best(lambda: pooling.max_pool_backward(gy, am, x.shape, *a)):5.1f} | "
          f"phase fwd {best(lambda: fwd(x, *a)):5.1f} no-argmax {best(lambda: fwd(x, *a, with_argmax=False)):5.1f} bwd {best(lambda: bwd(gy, am, x.shape, *a)):5.1f}")
