import sys, time, numpy as np
sys.path.insert(0,'.')
from minidl.kernels.threads import single_threaded_blas
def T(f, r=20):
    f(); t0=time.perf_counter()
    for _ in range(r): f()
    return (time.perf_counter()-t0)/r*1e3
rows=16384
with single_threaded_blas():
  for k in (75,80,96):
    a=np.random.rand(rows,k).astype(np.float32); w=np.random.rand(192,k).astype(np.float32); g=np.random.rand(rows,192).astype(np.float32)
    y=np.empty((rows,192),np.float32); gw=np.empty((192,k),np.float32)
    fl=2*rows*75*192
    t=T(lambda: np.matmul(a,w.T,out=y)); t2=T(lambda: np.matmul(g.T,a,out=gw)); gwT=np.empty((k,192),np.float32)
    t3=T(lambda: np.matmul(a.T,g,out=gwT))
    print(k, "fwd %.2f ms (%.0f GF of K=75 work)  dW g.T@a %.2f ms (%.0f)  dW^T a.T@g %.2f (%.0f)"%(t, fl/t/1e6, t2, fl/t2/1e6, t3, fl/t3/1e6))
