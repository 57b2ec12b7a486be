import numpy as np, time, minidl
import minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory
from threadpoolctl import threadpool_limits
keep_freed_memory()
N=256
layers=[("conv1",3,32,192,5,2),("mlp1-1",192,32,160,1,0),("mlp1-2",160,32,96,1,0),("conv2",96,16,192,5,2),("mlp2",192,16,192,1,0),("conv3",192,8,192,3,1),("mlp3",192,8,192,1,0)]
def t(f, r=3):
    f(); ts=[]
    for _ in range(r):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return min(ts)
rng=np.random.default_rng(0)
tot=[0,0,0]
for name,c,h,o,k,p in layers:
    x=minidl.tensor(np.ascontiguousarray(rng.standard_normal((N,h,h,c),dtype=np.float32)).transpose(0,3,1,2))
    w=minidl.tensor(rng.standard_normal((o,c,k,k),dtype=np.float32)); b=minidl.tensor(np.zeros(o,np.float32))
    def f():
        with minidl.no_grad(): F.conv2d(x,w,b,padding=p)
    A=rng.standard_normal((N*h*h,k*k*c),dtype=np.float32); B=rng.standard_normal((k*k*c,o),dtype=np.float32)
    Y=np.empty((N*h*h,o),np.float32)
    g=lambda: np.matmul(A,B,out=Y)
    tc=t(f); tg=t(g)
    flops=2*N*h*h*k*k*c*o
    tot[0]+=tc; tot[1]+=tg
    print(f"{name:8s} conv {tc*1e3:7.1f} ms {flops/tc/1e9:5.0f} GF/s  bare gemm 2thr {tg*1e3:7.1f} ms {flops/tg/1e9:5.0f} GF/s")
print("total conv", tot[0]*1e3, "bare", tot[1]*1e3)
