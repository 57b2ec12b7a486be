"""Keep freed host memory for reuse: a large speed-up for NumPy training on Linux.

NumPy asks the C library for every array. glibc serves a large request
(over 32 MB at most) with a fresh ``mmap`` from the operating system and hands
it back with ``munmap`` when the array is freed. Fresh pages cost a page
fault on first touch: roughly a quarter of a second per gigabyte. A training
step allocates and frees the same large arrays (activations, gradients,
column buffers) every step, so by default it pays those faults every step.

:func:`keep_freed_memory` tells glibc to serve everything from its heap
and never give freed memory back, so the next step reuses warm pages (the
idea of the caching allocators of GPU frameworks). On NIN at batch 128 on a
2-core machine this lifted a training step from about 44 to 51 images/s. The
process keeps its peak memory until it exits, which suits a training run;
it changes nothing but speed. It is a no-op outside glibc (macOS, Windows, musl).
"""
from __future__ import annotations

import ctypes
import ctypes.util
import os

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Ask glibc to keep freed memory for reuse (see module docstring); True if it was applied.

    Set MINIDL_HOST_ALLOCATOR=system to leave the C library's defaults alone.
    """
    global _applied
    if _applied:
        return True
    if os.environ.get("MINIDL_HOST_ALLOCATOR", "").lower() == "system":
        return False
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes, mallopt.restype = [ctypes.c_int, ctypes.c_int], ctypes.c_int
    ok = mallopt(_M_MMAP_MAX, 0) == 1                       # no mmap: large arrays come from the heap
    ok = mallopt(_M_TRIM_THRESHOLD, 2**31 - 1) == 1 and ok  # and freed heap memory is kept
    _applied = ok
    return ok
