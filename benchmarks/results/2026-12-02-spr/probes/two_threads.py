"""Two Python threads each running NumPy matmuls with a 1-thread BLAS: does the work scale?"""
import time, numpy as np, threading
from threadpoolctl import threadpool_limits
rng=np.random.default_rng(0)
v=rng.standard_normal((36,256,96),dtype=np.float32); u=rng.standard_normal((36,96,192),dtype=np.float32)
pr=np.empty((36,256,192),np.float32)
k=rng.standard_normal((36,36),dtype=np.float32); d=rng.standard_normal((36,256*96),dtype=np.float32); o=np.empty_like(d)
def stacked(): 
    for _ in range(50): np.matmul(v,u,out=pr)
def loop():
    for _ in range(50):
        for i in range(36): np.matmul(v[i],u[i],out=pr[i])
def kin():
    for _ in range(50): np.matmul(k,d,out=o)
with threadpool_limits(1):
    for f in (stacked, loop, kin):
        s=time.perf_counter(); f(); t1=time.perf_counter()-s
        th=[threading.Thread(target=f) for _ in range(2)]
        s=time.perf_counter(); [x.start() for x in th]; [x.join() for x in th]; t2=time.perf_counter()-s
        print(f.__name__, f"1 thread {t1*1e3:.0f} ms, 2 threads x same work {t2*1e3:.0f} ms (2x work; ideal = same)")
