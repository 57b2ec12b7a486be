"""OpenBLAS sgemm GFLOP/s at 1 and 2 threads for square and NIN-like shapes (B C-order, F-order, A given as a transposed view)."""
import numpy as np, time, threading
from threadpoolctl import threadpool_limits
def t(f, r=5):
    f(); ts=[]
    for _ in range(r):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return min(ts)
rng=np.random.default_rng(0)
for (M,K,N) in [(2048,2048,2048),(4096,1024,1024),(65536,2400,192),(65536,192,160),(16384,1728,192),(8192,2400,192),(512,2400,192),(2048,2400,192)]:
    A=rng.standard_normal((M,K),dtype=np.float32); B=rng.standard_normal((K,N),dtype=np.float32); Y=np.empty((M,N),np.float32)
    Bf=np.asfortranarray(B); At=np.ascontiguousarray(A.T)
    fl=2*M*K*N
    r=[]
    for thr in (1,2):
        with threadpool_limits(thr):
            r.append(fl/t(lambda: np.matmul(A,B,out=Y))/1e9)
            r.append(fl/t(lambda: np.matmul(A,Bf,out=Y))/1e9)
            r.append(fl/t(lambda: np.matmul(At.T,B,out=Y))/1e9)
    print(M,K,N, " 1thr: %.0f %.0f %.0f   2thr: %.0f %.0f %.0f GF/s" % tuple(r), flush=True)
