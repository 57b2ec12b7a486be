import numpy as np, time
from threadpoolctl import threadpool_info
print([ (i['internal_api'], i.get('architecture'), i.get('version'), i['filepath'].split('/')[-1]) for i in threadpool_info()])
rng=np.random.default_rng(0)
A=rng.standard_normal((256*256,2400),dtype=np.float32); B=rng.standard_normal((2400,192),dtype=np.float32)
Y=np.empty((A.shape[0],192),np.float32)
ts=[]
for _ in range(4):
    s=time.perf_counter(); np.matmul(A,B,out=Y); ts.append(time.perf_counter()-s)
print("conv2 gemm", min(ts)*1e3, 2*A.shape[0]*2400*192/min(ts)/1e9)
