"""Both cores for element-wise work: blocks of the batch handed to a few threads.

NumPy's matrix products already run on every core (OpenBLAS starts its own
threads), but every other NumPy operation runs on the thread that called it,
so on a 2-core machine one core waits while ReLU, pooling or col2im run. NumPy
releases Python's global interpreter lock inside its loops over large arrays,
so two Python threads can each run NumPy operations on their own part of the
batch at the same time. :func:`run_blocks` does that for the cache blocks of
:mod:`minidl.kernels.blocking`: the threads take the blocks from one shared
queue, each the next block not yet taken, until none is left. A thread that
starts late (woken after a pause, or its core busy with another program) then
takes fewer blocks instead of holding up the others: cut in advance into ``n``
equal runs, a call waited for its slowest run.

Where the operating system lets a program place its threads (Linux), the pool's
threads are kept off the core of the thread that hands them the blocks
(:func:`_place_workers`). Left to the scheduler, a thread woken after a pause is
often queued on the waker's own core, busy with its share of the blocks, and
starts only when that share is done or the scheduler moves it milliseconds
later: on the 2-core machine, 8 blocks of a product after 0.2 s of rest took
15.7-19.1 ms that way and 12.3-13.3 ms placed, 11.7-14.1 ms either way back to back
(benchmarks/results/2026-12-04-zen4/probes/thread_placement.log).

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
_worker_ids = []                    # native thread ids of the pool's threads
_placed_for = None                  # the caller's core the workers were last placed around
_sched_getcpu = None                # libc's sched_getcpu, False where there is none
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
    _forget_pool_after_fork()


def _forget_pool_after_fork() -> None:
    """A forked child has none of the parent's threads: it starts a pool of its own when it needs one."""
    global _pool, _placed_for
    _pool, _placed_for = None, None
    _worker_ids.clear()


def _start_pool() -> ThreadPoolExecutor:
    """The pool's threads, all started now (not one at a time as work arrives), so that they can be placed."""
    workers = get_num_threads() - 1
    pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="minidl",
                              initializer=lambda: _worker_ids.append(threading.get_native_id()))
    all_started = threading.Barrier(workers + 1)
    for _ in range(workers):
        pool.submit(all_started.wait)
    all_started.wait()
    return pool


def _current_cpu():
    """The core this thread runs on now (Linux's sched_getcpu), or None where that cannot be asked."""
    global _sched_getcpu
    if _sched_getcpu is None:
        try:
            import ctypes
            _sched_getcpu = ctypes.CDLL(None).sched_getcpu
        except (OSError, AttributeError, TypeError):
            _sched_getcpu = False
    cpu = _sched_getcpu() if _sched_getcpu else -1
    return cpu if cpu >= 0 else None


def _place_workers() -> None:
    """Put each pool thread on a core of its own other than the caller's (Linux; elsewhere nothing).

    Worker k gets the k-th of the caller's allowed cores with the caller's own left out. They are
    placed again only when the caller has moved to another core. A core the system refuses (a
    container's limits) leaves that thread where it was.
    """
    global _placed_for
    if not hasattr(os, "sched_setaffinity"):
        return
    cpu = _current_cpu()
    if cpu is None or cpu == _placed_for:
        return
    others = sorted(os.sched_getaffinity(0) - {cpu})
    for k, tid in enumerate(_worker_ids if others else []):
        try:
            os.sched_setaffinity(tid, {others[k % len(others)]})
        except OSError:
            pass
    _placed_for = cpu


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


class _SharedBlocks:
    """The blocks of one :func:`run_blocks` call (slices or indices, never None), handed out one at a time
    to whichever thread asks."""

    def __init__(self, blocks):
        self._blocks = iter(blocks)
        self._lock = threading.Lock()

    def take(self):
        """The next block not yet taken, or None when all are taken (or the queue was closed)."""
        with self._lock:
            return next(self._blocks, None)

    def close(self) -> None:
        """Hand out nothing more (a block failed: the others stop after their current block)."""
        with self._lock:
            self._blocks = iter(())


def _run_shared(fn, queue: _SharedBlocks) -> None:
    """Call ``fn`` on blocks taken from ``queue`` until it is empty."""
    _state.inside = True
    try:
        while (block := queue.take()) is not None:
            fn(block)
    except BaseException:
        queue.close()
        raise
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
    queue = _SharedBlocks(blocks)
    with single_threaded_blas():
        if n <= 1:
            _run_shared(fn, queue)
            return
        if _pool is None:
            _pool = _start_pool()
        _place_workers()
        pending = [_pool.submit(_run_shared, fn, queue) for _ in range(n - 1)]
        try:
            _run_shared(fn, queue)
        finally:
            for future in pending:
                future.result()
