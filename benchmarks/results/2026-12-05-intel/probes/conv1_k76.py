"""The products of conv1 on one block of 8192 rows (8 images), single-threaded BLAS: forward cols @ W.T and
dW = dy.T @ cols, for K = 75 columns (5x5x3), 76 (with the bias column), 80 and 96. ms and GFLOP/s."""
import numpy as np, time
from threadpoolctl import threadpool_limits
rng = np.random.default_rng(0)
M, O = 8192, 192
with threadpool_limits(1, "blas"):
    for K in (75, 76, 80, 96):
        cols = rng.standard_normal((M, K), dtype=np.float32); W = rng.standard_normal((O, K), dtype=np.float32)
        gy = rng.standard_normal((M, O), dtype=np.float32); y = np.empty((M, O), np.float32); dw = np.empty((O, K), np.float32)
        def t(f, r=30):
            f(); t0 = time.perf_counter()
            for _ in range(r): f()
            return (time.perf_counter() - t0) / r * 1e3
        tf = t(lambda: np.matmul(cols, W.T, out=y)); tb = t(lambda: np.matmul(gy.T, cols, out=dw))
        print(f"K={K}: fwd {tf:.3f} ms ({2*M*K*O/tf/1e6:.0f} GFLOP/s)  dW {tb:.3f} ms ({2*M*K*O/tb/1e6:.0f} GFLOP/s)")
