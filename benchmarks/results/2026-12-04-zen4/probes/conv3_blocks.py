"""NIN's 3x3 layer (192 -> 192 on 8x8) forward, no graph, at batch 64 and 128: blocks as today (at least
4) against the rule before (one block when the batch fits, on one core under Winograd's single-threaded BLAS)."""
import sys, time, numpy as np
sys.path.insert(0, '.')
import minidl, minidl.functional as F, minidl.functional.conv as conv
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory()
rule = conv._image_chunks
def before(n_images, bytes_per_image, backend, budget=None):
    chunks = list(rule(n_images, bytes_per_image, backend, budget))
    fits = -(-n_images // max(1, (budget or conv.COLUMN_BUFFER_BYTES[backend]) // max(1, bytes_per_image))) == 1
    return iter([(0, n_images)] if fits else chunks)


if __name__ == "__main__":
    for n in (64, 128):
        x = minidl.Tensor(np.random.rand(n, 8, 8, 192).astype(np.float32).transpose(0, 3, 1, 2))
        w = minidl.Tensor((np.random.rand(192, 192, 3, 3).astype(np.float32) - .5) * .1)
        for name, chunks in (("one block if it fits", before), ("at least 4 (today)", rule)):
            conv._image_chunks = chunks
            with minidl.no_grad():
                F.conv2d(x, w, padding=1); ts = []
                for _ in range(25):
                    time.sleep(0.05); t0 = time.perf_counter(); F.conv2d(x, w, padding=1); ts.append(time.perf_counter() - t0)
            print(f"batch {n:3d}  {name:22s} forward {np.median(ts) * 1e3:5.1f} ms")
        conv._image_chunks = rule
