"""bench_ops' softmax cross-entropy case (minidl only), back to back: the best of 7 timeit repeats of 2000 calls.
    cd TREE && python /path/to/ce_overhead.py       (times the minidl of the current directory)
"""
import os, sys, timeit
sys.path.insert(0, os.path.join(os.getcwd(), "benchmarks"))
import numpy as np, bench_ops
rng = np.random.default_rng(0)
out = []
for b in (64, 128):
    x = rng.standard_normal((b, 10), dtype=np.float32)
    fn = bench_ops.minidl_case("ce", {}, x, rng, np); fn()
    out.append(f"b{b} {min(timeit.repeat(fn, number=2000, repeat=7)) / 2000 * 1e6:.1f} us")
print(os.getcwd(), bench_ops.minidl.__file__, "; ".join(out))
