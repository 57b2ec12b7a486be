"""NumPy element-wise operations on one block of C = 192 channels, in the cache of one core, for blocks of
85 to 2730 rows (64 KiB to 2 MiB of float32): ns a value. sub_rows / sub_bc: x - v against v repeated in
rows / broadcast from (C,); max0 / maxz: max(x, 0) against the scalar / a zeros array; sum0: column sums;
einsum: column dots; sub_inplace_bc: y -= v in place. Single thread."""
import numpy as np, time
C = 192
for n in (85, 170, 341, 682, 1365, 2730):
    rng = np.random.default_rng(0)
    x = rng.standard_normal((n, C), dtype=np.float32); y = np.empty_like(x)
    v = rng.standard_normal(C, dtype=np.float32); vr = np.tile(v, (n, 1)); z = np.zeros_like(x)
    def t(name, f, r=max(200, 2000*1365//n)):
        for _ in range(50): f()
        t0=time.perf_counter()
        for _ in range(r): f()
        dt = (time.perf_counter()-t0)/r
        return f"{name}={1e9*dt/x.size:.3f}"
    print(n, x.nbytes//1024, "KB ns/elem:", t("sub_rows", lambda: np.subtract(x, vr, out=y)), t("sub_bc", lambda: np.subtract(x, v, out=y)),
          t("max0", lambda: np.maximum(x, 0, out=y)), t("maxz", lambda: np.maximum(x, z, out=y)), t("sum0", lambda: x.sum(axis=0)), t("einsum", lambda: np.einsum("ij,ij->j", x, x)),
          t("sub_inplace_bc", lambda: np.subtract(y, v, out=y)))
