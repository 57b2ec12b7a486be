"""`DistributedDataParallel`: the same model on every rank, its gradients averaged after backward.

Data parallelism: each of the N ranks holds a full copy of the model and computes the gradient
of the loss on its own part of the global batch. If every part has the same size b, the
gradient of the global batch's mean loss is the mean of the N local gradients::

    d/dw (1/(N b)) sum_i loss_i = (1/N) sum_r [ d/dw (1/b) sum_{i in part r} loss_i ]

so after one all-reduce (mean) every rank holds the same gradient, takes the same optimizer
step, and the copies stay equal without ever sending weights.

Buckets: one collective per parameter would pay the collective's latency dozens of times a
step; the gradients are instead copied into a few large flat buffers (buckets of at most
``bucket_cap_mb``, in reverse order of the parameters, as their gradients become ready in
backward; PyTorch's default cap, 25 MB, holds all of NIN's 3.9 MB), each reduced by one
collective, then copied back. The reduction starts when backward ends (a callback queued on
the engine by ``forward``). Starting each bucket as soon as its gradients are ready, to overlap
with the rest of backward, is what PyTorch does; on the measured step it would not pay here
(README, "Training on several GPUs or machines": the all-reduce is under 1% of a CPU step).

Wrap, then train as usual::

    model = DistributedDataParallel(NIN(...))      # broadcasts rank 0's parameters and buffers
    loss = F.softmax_cross_entropy(model(x), y)    # x: this rank's part of the batch
    loss.backward()                                 # ... then the gradients are averaged
    optimizer.step()

``ddp.module`` is the wrapped model (its state_dict keys are the model's own).
"""
from __future__ import annotations

from ..backends import get_array_module
from ..engine.backward import queue_callback
from ..engine.function import is_grad_enabled
from ..nn.module import Module
from .compression import check_compression
from .process_group import get_communicator


def broadcast_parameters(module, root: int = 0, communicator=None, buffers: bool = True) -> None:
    """Give every rank rank ``root``'s parameters (and buffers), in place."""
    communicator = get_communicator() if communicator is None else communicator
    for p in module.parameters():
        communicator.broadcast(p.data, root)
    if buffers:
        for _, b in module.named_buffers():
            communicator.broadcast(b, root)


class Bucket:
    """Parameters whose gradients travel together in one flat buffer (all of one dtype)."""

    def __init__(self, params):
        self.params = list(params)
        self.size = sum(p.size for p in self.params)
        self.buffer = None                      # allocated at the first reduction, on the gradients' backend

    def reduce(self, communicator, compression=None) -> None:
        """Gradients -> flat buffer -> one all-reduce (mean) -> gradients. A missing gradient counts as zeros."""
        first = self.params[0]
        xp = get_array_module(first.data)
        if self.buffer is None or get_array_module(self.buffer) is not xp:     # first use, or moved backend
            self.buffer = xp.empty(self.size, dtype=first.data.dtype)
        offset = 0
        for p in self.params:
            view = self.buffer[offset:offset + p.size]
            if p.grad is None:
                view[...] = 0
            else:
                view[...] = p.grad.reshape(-1) if p.grad.flags.c_contiguous else xp.ascontiguousarray(p.grad).reshape(-1)
            offset += p.size
        communicator.all_reduce(self.buffer, "mean", compression=compression)
        offset = 0
        for p in self.params:
            view = self.buffer[offset:offset + p.size].reshape(p.shape)
            if p.grad is None or not p.grad.flags.c_contiguous:
                p.grad = view.copy()
            else:
                p.grad[...] = view
            offset += p.size


def make_buckets(params, cap_bytes: int) -> list:
    """Consecutive runs of ``params`` (taken last to first) of one dtype, each at most ``cap_bytes``
    (a parameter larger than the cap gets a bucket of its own)."""
    buckets, current, current_bytes = [], [], 0
    for p in reversed(list(params)):
        nbytes = p.size * p.data.dtype.itemsize
        if current and (current_bytes + nbytes > cap_bytes or p.data.dtype != current[0].data.dtype):
            buckets.append(Bucket(current))
            current, current_bytes = [], 0
        current.append(p)
        current_bytes += nbytes
    if current:
        buckets.append(Bucket(current))
    return buckets


class DistributedDataParallel(Module):
    """Data-parallel wrapper of ``module`` (see the module docstring).

    communicator:   default: the one :func:`minidl.distributed.init` started
    bucket_cap_mb:  the largest bucket, in MB (2^20 bytes)
    compression:    None, "bf16" or "fp16": the gradients travel rounded to 16 bits
    broadcast_buffers: also give every rank rank 0's buffers at the start
    """

    def __init__(self, module, communicator=None, bucket_cap_mb: float = 25.0, compression: str | None = None,
                 broadcast_buffers: bool = True):
        super().__init__()
        if not isinstance(module, Module):
            raise TypeError(f"DistributedDataParallel: expected a Module, got {type(module).__name__}")
        if not bucket_cap_mb > 0:
            raise ValueError(f"DistributedDataParallel: bucket_cap_mb must be positive, got {bucket_cap_mb}")
        self.module = module
        self.communicator = get_communicator() if communicator is None else communicator
        self.compression = check_compression(compression, "DistributedDataParallel")
        params = [p for p in module.parameters() if p.requires_grad]
        self.buckets = make_buckets(params, int(bucket_cap_mb * 2**20))
        self._reduction_queued = False
        broadcast_parameters(module, 0, self.communicator, buffers=broadcast_buffers)

    def forward(self, *args, **kwargs):
        if self.training and is_grad_enabled() and not self._reduction_queued and self.communicator.size > 1:
            self._reduction_queued = True
            queue_callback(self.reduce_gradients)
        return self.module(*args, **kwargs)

    def reduce_gradients(self) -> None:
        """Average every parameter's ``.grad`` over the ranks, bucket by bucket (one collective each)."""
        self._reduction_queued = False
        for bucket in self.buckets:
            bucket.reduce(self.communicator, self.compression)

    def state_dict(self):
        return self.module.state_dict()

    def load_state_dict(self, state_dict, strict: bool = True):
        return self.module.load_state_dict(state_dict, strict)

    def extra_repr(self) -> str:
        sizes = ", ".join(str(b.size) for b in self.buckets)
        return (f"world_size={self.communicator.size}, buckets of {sizes} values"
                + (f", compression={self.compression}" if self.compression else ""))

