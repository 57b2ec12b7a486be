import torch, time
torch.set_num_threads(2)
N=256
layers=[("conv1",3,32,192,5,2),("mlp1-1",192,32,160,1,0),("mlp1-2",160,32,96,1,0),("conv2",96,16,192,5,2),("mlp2",192,16,192,1,0),("conv3",192,8,192,3,1),("mlp3",192,8,192,1,0)]
def t(f, r=3):
    f(); ts=[]
    for _ in range(r):
        s=time.perf_counter(); f(); ts.append(time.perf_counter()-s)
    return min(ts)
for cl in (False, True):
  tot=0
  for name,c,h,o,k,p in layers:
    conv=torch.nn.Conv2d(c,o,k,padding=p)
    x=torch.randn(N,c,h,h)
    if cl: conv=conv.to(memory_format=torch.channels_last); x=x.contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        tc=t(lambda: conv(x))
    tot+=tc
    flops=2*N*h*h*k*k*c*o
    print(f"{'CL' if cl else 'NCHW'} {name:8s} {tc*1e3:7.1f} ms {flops/tc/1e9:5.0f} GF/s")
  print("total", tot*1e3)
