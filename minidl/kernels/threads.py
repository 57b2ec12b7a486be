"""Both cores for element-wise work: blocks of the batch handed to a few threads.

NumPy's matrix products already run on every core (OpenBLAS starts its own
threads), but every other NumPy operation runs on the thread that called it,
so on a 2-core machine one core waits while ReLU, pooling or col2im run. NumPy
releases Python's global interpreter lock inside its loops over large arrays,
so two Python threads can each run NumPy operations on their own part of the
batch at the same time. :func:`run_blocks` does that for the cache blocks of
:mod:`minidl.kernels.blocking`: with ``n`` threads, the blocks are cut into
``n`` runs of neighbouring blocks, one per thread.

Every block writes its own part of the result, so the result is the same
whatever the number of threads. ``set_num_threads(1)`` (or the environment
variable ``MINIDL_NUM_THREADS=1``) runs everything on the calling thread.
"""
from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

_num_threads = None
_pool = None


def get_num_threads() -> int:
    """Threads for element-wise work: ``set_num_threads``, else $MINIDL_NUM_THREADS, else the CPU count."""
    global _num_threads
    if _num_threads is None:
        value = os.environ.get("MINIDL_NUM_THREADS", "")
        if not value:
            _num_threads = max(1, os.cpu_count() or 1)
        elif value.strip().isdigit() and int(value) >= 1:
            _num_threads = int(value)
        else:
            raise ValueError(f"MINIDL_NUM_THREADS must be a positive integer, got {value!r}")
    return _num_threads


def set_num_threads(n: int) -> None:
    """Use ``n`` threads (n >= 1) for the blocked element-wise kernels (like ``torch.set_num_threads``)."""
    global _num_threads, _pool
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"set_num_threads: n must be an integer >= 1, got {n!r}")
    _num_threads = n
    if _pool is not None:
        _pool.shutdown(wait=True)
        _pool = None


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own when it needs one."""
    global _pool
    _pool = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _run_all(fn, blocks) -> None:
    for block in blocks:
        fn(block)


def run_blocks(fn, blocks) -> None:
    """Call ``fn(block)`` for every block, spread over :func:`get_num_threads` threads.

    ``fn`` must write only its own block's part of the result. Errors are raised in the caller.
    """
    global _pool
    n = min(get_num_threads(), len(blocks))
    if n <= 1:
        _run_all(fn, blocks)
        return
    if _pool is None:
        _pool = ThreadPoolExecutor(max_workers=get_num_threads() - 1, thread_name_prefix="minidl")
    cuts = [len(blocks) * i // n for i in range(n + 1)]
    runs = [blocks[cuts[i]:cuts[i + 1]] for i in range(n)]
    pending = [_pool.submit(_run_all, fn, run) for run in runs[1:]]
    try:
        _run_all(fn, runs[0])
    finally:
        for future in pending:
            future.result()
