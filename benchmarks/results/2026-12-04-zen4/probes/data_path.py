import sys, time, numpy as np
sys.path.insert(0,'.')
import minidl, minidl.data as mdata
from minidl.train import tasks
rng=np.random.default_rng(0)
imgs=rng.integers(0,256,(50000,32,32,3),dtype=np.uint8); labels=rng.integers(0,10,50000)
ds=mdata.ArrayDataset(imgs, labels, [str(i) for i in range(10)])
task=tasks.TASKS["cifar10"] if hasattr(tasks,'TASKS') else None
aug=task.augment()
std=mdata.Standardize().fit(mdata.to_float(imgs[:5000]))
loader=mdata.DataLoader(ds,128,shuffle=True,transform=std,augment=aug)
order=loader.shuffled_order(); b=loader.batches(order)
loader.load(b[0])
t0=time.perf_counter()
for i in range(20): loader.load(b[i])
print("load b128 with standardize+augment: %.1f ms"%((time.perf_counter()-t0)/20*1e3))
