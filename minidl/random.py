"""Seeded random numbers on both backends.

One host generator (NumPy's PCG64) is the source of truth. On NumPy it draws
everything. On CuPy a device generator is seeded *from* the host generator the
first time it is needed, so ``manual_seed(s)`` fixes both, and saving the host
state (:func:`get_state`) is enough to resume a run exactly: after
:func:`get_state` or :func:`set_state` the device generator is re-seeded from
the host at its next use, in an uninterrupted run and in a resumed one alike.
"""
from __future__ import annotations

import numpy as np

from . import backends as _backend

_host = np.random.default_rng(0)
_device = None   # a cupy.random.RandomState, seeded lazily from _host


def manual_seed(seed: int) -> None:
    """Seed minidl's generators on every backend."""
    global _host, _device
    _host = np.random.default_rng(int(seed))
    _device = None


def host_rng() -> np.random.Generator:
    """The NumPy generator: shuffling, augmentation offsets, initial weights."""
    return _host


def rng_for(xp):
    """A generator that makes arrays of module ``xp`` (NumPy Generator or CuPy RandomState)."""
    global _device
    if xp is np:
        return _host
    if _device is None:
        _device = xp.random.RandomState(int(_host.integers(2**63 - 1)))
    return _device


def uniform(shape, dtype, xp):
    """U[0, 1) samples of ``shape`` and floating ``dtype`` on module ``xp``."""
    dtype = np.dtype(dtype)
    if xp is np:
        return _host.random(shape, dtype=dtype if dtype in (np.float32, np.float64) else np.float64).astype(dtype, copy=False)
    return rng_for(xp).random_sample(shape, dtype=dtype)


def get_state() -> dict:
    """A picklable snapshot of the generators (see module docstring)."""
    global _device
    state = {"host": _host.bit_generator.state}
    _device = None
    return state


def set_state(state: dict) -> None:
    global _device
    _host.bit_generator.state = state["host"]
    _device = None


def randn(*shape, dtype=np.float32):
    """Standard normal samples from the host generator, as an array of the active backend."""
    sample = _host.standard_normal(shape, dtype=np.float32 if np.dtype(dtype) == np.float32 else np.float64)
    return _backend.to_backend(sample.astype(dtype, copy=False))
