"""Forward of NIN's layers with a bias and the fused ReLU, no graph (as in inference), 2 threads: each block
adding the bias by broadcasting (the code before 2026-12-05 afternoon) or as a tile (minidl/kernels/tiles.py),
interleaved, best of 5 each, ms. The 1x1 layers and Winograd's (conv2, conv3) add the bias in their blocks;
conv1 (im2col) carries it in its product and is not affected."""
import time

import numpy as np

import minidl
import minidl.functional as F
import minidl.functional.conv as conv_module
import minidl.kernels.host_memory as host_memory
from minidl.kernels.tiles import Tile

host_memory.keep_freed_memory()


class Broadcast(Tile):
    def apply(self, ufunc, a, out):
        ufunc(a, self.vector, out=out)


def best_ms(f, n=5):
    f()
    best = 1e9
    for _ in range(n):
        t0 = time.perf_counter()
        f()
        best = min(best, time.perf_counter() - t0)
    return best * 1e3


rng = np.random.default_rng(0)
layers = [("mlp1-1 1x1 192->160 @32x32", 192, 160, 1, 32), ("conv2 5x5 96->192 @16x16", 96, 192, 5, 16),
          ("mlp2 1x1 192->192 @16x16", 192, 192, 1, 16), ("conv3 3x3 192->192 @8x8", 192, 192, 3, 8)]
for batch in (128, 256):
    for name, c, o, k, hw in layers:
        x = minidl.Tensor(rng.standard_normal((batch, hw, hw, c), dtype=np.float32).transpose(0, 3, 1, 2))
        w = minidl.Tensor(rng.standard_normal((o, c, k, k), dtype=np.float32) * 0.05)
        b = minidl.Tensor(rng.standard_normal(o, dtype=np.float32))
        times = {"broadcast": [], "tile": []}
        outputs = {}
        for rep in range(2):
            for how, cls in (("broadcast", Broadcast), ("tile", Tile)):
                conv_module.Tile = cls
                with minidl.no_grad():
                    times[how].append(best_ms(lambda: F.conv2d(x, w, b, padding=k // 2, activation="relu")))
                    outputs[how] = F.conv2d(x, w, b, padding=k // 2, activation="relu").numpy()
        conv_module.Tile = Tile
        print(f"batch {batch:3d} {name:28s} broadcast {min(times['broadcast']):6.1f}  tile {min(times['tile']):6.1f}  "
              f"same values: {np.array_equal(outputs['broadcast'], outputs['tile'])}", flush=True)
