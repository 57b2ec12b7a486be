"""float32 error of NIN's 5x5 layer (96 -> 192 on 16x16, a block of 8 images) against float64 im2col:
Winograd on 8x8 tiles, on 6x6 tiles, and im2col."""
import sys, functools, numpy as np
sys.path.insert(0, '.')
from minidl.kernels import winograd
from minidl.kernels.blocking import scratch_array
from minidl.kernels.im2col import im2col
sc = functools.partial(scratch_array, np)
rng = np.random.default_rng(0)
c, o, k, hw, nb = 96, 192, 5, 16, 8
x = rng.standard_normal((nb, hw, hw, c)).astype(np.float32)
w = (rng.standard_normal((o, c, k, k)) * 0.05).astype(np.float32)
w_mat = lambda w: w.transpose(0, 2, 3, 1).reshape(o, -1)
ref = (im2col(x.astype(np.float64), k, k, 1, 1, 2, 2).reshape(-1, k * k * c) @ w_mat(w.astype(np.float64)).T).reshape(nb, hw, hw, o)
y = (im2col(x, k, k, 1, 1, 2, 2).reshape(-1, k * k * c) @ w_mat(w).T).reshape(nb, hw, hw, o)
print(f"outputs: largest |y| {np.abs(ref).max():.2f}, rms {np.sqrt((ref ** 2).mean()):.2f}")
print(f"im2col        largest error {np.abs(y - ref).max():.2e}  rms {np.sqrt(((y - ref) ** 2).mean()):.2e}")
for tile in (6, 8):
    plan = winograd.WinogradPlan((hw, hw), (o, c, k, k), (2, 2), np, np.float32, tile=tile)
    y = np.empty((nb, hw, hw, o), np.float32)
    plan.forward(np, x, plan.transform_weight(np, w), y, sc)
    print(f"winograd {tile}x{tile}  largest error {np.abs(y - ref).max():.2e}  rms {np.sqrt(((y - ref) ** 2).mean()):.2e}")
