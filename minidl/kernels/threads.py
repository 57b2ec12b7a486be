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

Blocks may call the BLAS too (a convolution's blocks each run im2col and
their own matrix product). While blocks run, the BLAS runs single-threaded
in each (:func:`single_threaded_blas`, through threadpoolctl): two threads
that each start a BLAS thread per core would fight over the cores. The
product of a block then reads columns that its own thread has just written
into the cache, and no core waits for the other between the copy and the
product. A multi-threaded BLAS may add up a product in another order than a
single-threaded one (OpenBLAS does, in the last bits), so the BLAS is
single-threaded whenever there are several blocks, even on one thread: the
result depends on how the work is cut into blocks, never on the threads.
One block runs on the calling thread with the BLAS as it is.

A block that itself calls :func:`run_blocks` (a convolution block's im2col)
runs those inner blocks on its own thread.
"""
from __future__ import annotations

import contextlib
import os
import threading
from concurrent.futures import ThreadPoolExecutor

_num_threads = None
_pool = None
_blas = None
_state = threading.local()          # .inside: this thread is running blocks of a run_blocks call


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
    """Use ``n`` threads (n >= 1) for the blocked kernels (like ``torch.set_num_threads``).

    That includes the matrix products of the convolutions, which run inside their blocks:
    with ``n = 1`` a convolution uses one core.
    """
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


def single_threaded_blas():
    """A context in which NumPy's BLAS (OpenBLAS, MKL, BLIS: whatever threadpoolctl finds) uses one thread.

    The BLAS libraries are looked up once, at the first call; without threadpoolctl it changes nothing.
    """
    global _blas
    if _blas is None:
        try:
            import numpy  # noqa: F401  (the BLAS to find is the one NumPy loaded)
            from threadpoolctl import ThreadpoolController
            _blas = ThreadpoolController().select(user_api="blas")
        except ImportError:
            _blas = False
    return _blas.limit(limits=1) if _blas else contextlib.nullcontext()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forget_pool_after_fork)


def _run_all(fn, blocks) -> None:
    _state.inside = True
    try:
        for block in blocks:
            fn(block)
    finally:
        _state.inside = False


def run_blocks(fn, blocks) -> None:
    """Call ``fn(block)`` for every block, spread over :func:`get_num_threads` threads.

    ``fn`` must write only its own block's part of the result. Errors are raised in the caller.
    """
    global _pool
    if getattr(_state, "inside", False) or len(blocks) <= 1:     # nested, or nothing to share
        for block in blocks:
            fn(block)
        return
    n = min(get_num_threads(), len(blocks))
    with single_threaded_blas():
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
