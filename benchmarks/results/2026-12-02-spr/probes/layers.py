"""Per layer at batch N: minidl Conv2d Function (algorithm auto, ReLU fused) fwd and fwd+bwd, the bare 2-thread
im2col GEMMs of the same shapes, PyTorch channels_last fwd and fwd+bwd. python layers.py N"""
"""Per layer at batch N: minidl conv fwd / fwd+bwd, the bare 2-thread GEMMs of the same flops, PyTorch CL fwd / fwd+bwd."""
import sys, time, numpy as np, torch, minidl, minidl.functional as F
from minidl.kernels.host_memory import keep_freed_memory
keep_freed_memory(); torch.set_num_threads(2)
N = int(sys.argv[1]) if len(sys.argv) > 1 else 128
layers=[("conv1",3,32,192,5,2),("mlp1-1",192,32,160,1,0),("mlp1-2",160,32,96,1,0),("conv2",96,16,192,5,2),("mlp2",192,16,192,1,0),("conv3",192,8,192,3,1),("mlp3",192,8,192,1,0)]
def t(f, r=5):
    f(); ts=[]
    for _ in range(r):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return min(ts)*1e3
rng=np.random.default_rng(0)
tot=np.zeros(6)
print(f"{'layer':8s} {'md fwd':>7s} {'md f+b':>7s} {'gemm f':>7s} {'gemm fb':>7s} {'pt fwd':>7s} {'pt f+b':>7s}  ms, N={N}")
for name,c,h,o,k,p in layers:
    first = c == 3
    xa = np.ascontiguousarray(rng.standard_normal((N,h,h,c),dtype=np.float32)).transpose(0,3,1,2)
    x=minidl.tensor(xa, requires_grad=not first)
    w=minidl.tensor(rng.standard_normal((o,c,k,k),dtype=np.float32)*0.05, requires_grad=True); b=minidl.tensor(np.zeros(o,np.float32), requires_grad=True)
    gy = np.ascontiguousarray(rng.standard_normal((N,h,h,o),dtype=np.float32)).transpose(0,3,1,2)
    from minidl.functional.conv import Conv2d
    fn=Conv2d((1,1),(p,p),"auto","relu"); fn.needs_grad=(not first, True, True)
    def fwd():
        fn.forward(xa,w.data,b.data)
    def fb():
        fn.forward(xa,w.data,b.data); fn.backward(gy)
    M, K = N*h*h, k*k*c
    A=rng.standard_normal((M,K),dtype=np.float32); B=rng.standard_normal((K,o),dtype=np.float32); Y=np.empty((M,o),np.float32)
    G=rng.standard_normal((M,o),dtype=np.float32); dW=np.empty((o,K),np.float32); dA=np.empty((M,K),np.float32)
    g1=lambda: np.matmul(A,B,out=Y)
    def g3():
        np.matmul(A,B,out=Y); np.matmul(G.T,A,out=dW)
        if not first: np.matmul(G,B.T,out=dA)
    conv=torch.nn.Conv2d(c,o,k,padding=p).to(memory_format=torch.channels_last)
    tx=torch.randn(N,c,h,h).contiguous(memory_format=torch.channels_last).requires_grad_(not first)
    tg=torch.randn(N,o,h,h).contiguous(memory_format=torch.channels_last)
    def pf():
        with torch.no_grad(): conv(tx)
    def pfb():
        conv(tx).backward(tg)
    r=np.array([t(fwd),t(fb),t(g1),t(g3),t(pf),t(pfb)])
    if name in ("mlp2",): r*=2
    tot+=r
    print(f"{name:8s} " + " ".join(f"{v:7.1f}" for v in r) + ("  (x2)" if name=="mlp2" else ""), flush=True)
print(f"{'total':8s} " + " ".join(f"{v:7.1f}" for v in tot))
