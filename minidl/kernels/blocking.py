"""Cache blocking: run a chain of whole-array operations one slice of the batch at a time.

A NumPy expression such as ``gy * (y > 0)`` makes one pass over memory per
operation: ``y > 0`` reads all of ``y`` and writes a mask, then the product
reads the mask and ``gy`` again and writes the result. At NIN's sizes (tens of
megabytes per activation) every pass goes out to main memory, and memory, not
arithmetic, sets the speed of these ops on a CPU.

Cutting the batch into blocks of about :data:`CACHE_BLOCK_BYTES` and running the
whole chain on one block before moving to the next keeps each block in the
core's cache between the operations: main memory is then read about once and
written about once, whatever the number of steps in the chain. The price is a
Python loop over blocks, a few microseconds per operation and block, small
next to a megabyte of work. Max pooling (nine window offsets per block), batch
norm and ReLU's backward use it.

On CuPy there is no such cache to fit and every operation is a kernel launch,
so :func:`batch_blocks` returns the whole batch as one block there.
"""
from __future__ import annotations

import math
import threading

import numpy as np

#: bytes of input per block: about half of one core's 2 MiB L2 cache on the development machine,
#: leaving room for the block's outputs and temporaries
CACHE_BLOCK_BYTES = 1 << 20


def batch_blocks(xp, n: int, bytes_per_item: int, budget: int | None = None, multiple: int = 1):
    """Slices [start, stop) that cut ``n`` items (images, rows) into blocks of about ``budget`` bytes.

    ``bytes_per_item`` is what one item of the largest array read costs; ``budget`` defaults to
    :data:`CACHE_BLOCK_BYTES`. Every block but the last holds a multiple of ``multiple`` items
    (at least that many; a tile's rows, minidl/kernels/tiles.py); on CuPy (``xp`` not NumPy)
    the only block is the whole range. The blocks change how the work is cut, never its result.
    """
    if xp is not np:
        return [slice(0, n)]
    budget = CACHE_BLOCK_BYTES if budget is None else budget
    per_block = max(1, budget // max(1, bytes_per_item))
    per_block = max(multiple, per_block - per_block % multiple)
    return [slice(start, min(n, start + per_block)) for start in range(0, n, per_block)]


_scratch = threading.local()


def _kept_buffer(key, n_elements: int, dtype, make):
    """This thread's flat NumPy buffer under ``key``: at least ``n_elements``, made anew by ``make`` only
    when it is missing or too small."""
    buffers = getattr(_scratch, "buffers", None)
    if buffers is None:
        buffers = _scratch.buffers = {}
    buffer = buffers.get(key)
    if buffer is None or buffer.size < n_elements:
        buffer = buffers[key] = make(n_elements, dtype=dtype)
    return buffer[:n_elements]


def scratch_buffer(xp, name: str, n_elements: int, dtype):
    """A flat buffer of at least ``n_elements`` for a block's temporaries, reused by this thread.

    Each thread keeps one buffer per ``name`` and dtype, grown when a block needs more, so that a
    step's hundreds of blocks do not each allocate megabytes afresh (a fresh large array costs
    page faults unless the allocator keeps freed memory, minidl/kernels/host_memory.py). The
    caller must be done with the buffer before it asks for the same name again. On CuPy the
    memory pool already reuses memory: a new array is returned.
    """
    if xp is not np:
        return xp.empty(n_elements, dtype=dtype)
    return _kept_buffer(("scratch", name, np.dtype(dtype).str), n_elements, dtype, np.empty)


def scratch_array(xp, name: str, shape, dtype):
    """:func:`scratch_buffer` of that name, as an array of ``shape``."""
    return scratch_buffer(xp, name, math.prod(int(side) for side in shape), dtype).reshape(shape)
