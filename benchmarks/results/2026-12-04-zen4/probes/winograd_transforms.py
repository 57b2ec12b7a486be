"""One Winograd block, one thread: the tile transforms as one Kronecker product (before) against one matrix
per tile axis (transform_tile_axes, today), beside the block's a*a products and its whole forward pass."""
import sys, time, functools, numpy as np
sys.path.insert(0, '.')
from minidl.kernels.threads import single_threaded_blas
from minidl.kernels import winograd
from minidl.kernels.blocking import scratch_array
def T(f, r=20):
    f(); t0 = time.perf_counter()
    for _ in range(r): f()
    return (time.perf_counter() - t0) / r * 1e3
sc = functools.partial(scratch_array, np)
with single_threaded_blas():
    for name, (c, o, k, hw, nb) in {"conv2 5x5 96->192 @16x16": (96, 192, 5, 16, 12), "conv3 3x3 192->192 @8x8": (192, 192, 3, 8, 16)}.items():
        plan = winograd.WinogradPlan((hw, hw), (o, c, k, k), (k // 2, k // 2), np, np.float32)
        a, (mh, mw) = plan.tile, plan.m
        x = np.random.rand(nb, hw, hw, c).astype(np.float32); w = np.random.rand(o, c, k, k).astype(np.float32)
        u = plan.transform_weight(np, w); y = np.empty((nb, hw, hw, o), np.float32)
        tiles = sc("t", (a, a, nb, *plan.tiles, c), np.float32); tiles[...] = plan._tiled(np, plan._padded(np, x, sc), (a, a))
        v = sc("v", (a * a, nb * plan.tiles_per_image, c), np.float32)
        k_in = np.kron(*plan.in_transform); k_out = np.kron(*plan.out_transform)
        p = sc("p", (a * a, v.shape[1], o), np.float32); ot = sc("o", (mh * mw, nb, *plan.tiles, o), np.float32)
        print(f"{name}, tiles {a}x{a}, a block of {nb} images:")
        print(f"  whole forward        {T(lambda: plan.forward(np, x, u, y, sc)):6.2f} ms")
        print(f"  input transform:  kron {T(lambda: np.matmul(k_in, tiles.reshape(a * a, -1), out=v.reshape(a * a, -1))):6.2f} ms, "
              f"per axis {T(lambda: winograd.transform_tile_axes(np, *plan.in_transform, tiles, v, sc)):6.2f} ms")
        print(f"  {a * a} products          {T(lambda: np.matmul(v, u, out=p)):6.2f} ms")
        print(f"  output transform: kron {T(lambda: np.matmul(k_out, p.reshape(a * a, -1), out=ot.reshape(mh * mw, -1))):6.2f} ms, "
              f"per axis {T(lambda: winograd.transform_tile_axes(np, *plan.out_transform, p, ot, sc)):6.2f} ms")
