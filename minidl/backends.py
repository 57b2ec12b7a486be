"""The backend switch: one array module, NumPy on the CPU or CuPy on a GPU.

Every op in minidl is written once against an *array module* ``xp`` that is
either :mod:`numpy` or :mod:`cupy`; both offer the same API, so the code
``xp.maximum(x, 0)`` runs on whichever device holds ``x``::

    xp = get_array_module(x)      # numpy for numpy.ndarray, cupy for cupy.ndarray
    y = xp.maximum(x, 0)

New tensors are created on the *active* backend, chosen (in that order of
precedence) by a ``with minidl.backend("cupy"):`` block, by
``minidl.set_backend("cupy")``, or by the environment variable
``MINIDL_BACKEND`` (default ``numpy``). ``"auto"`` means CuPy when a GPU is
usable and NumPy otherwise.
"""
from __future__ import annotations

import contextlib
import os

import numpy as np

BACKENDS = ("numpy", "cupy")

_active: str | None = None   # resolved lazily, so importing minidl never touches a GPU
_cupy = None                 # the cupy module once it has been checked


class BackendError(RuntimeError):
    """The requested backend cannot be used on this machine."""


def _load_cupy():
    """Import CuPy and check that a GPU is visible; raise BackendError otherwise."""
    global _cupy
    if _cupy is not None:
        return _cupy
    try:
        import cupy
    except ImportError as exc:
        raise BackendError(
            "minidl: the 'cupy' backend needs CuPy, which is not installed "
            f"({exc}). Install the wheel matching your CUDA version, e.g. "
            "`pip install -e '.[gpu-cuda12]'` (cupy-cuda12x) or "
            "`pip install -e '.[gpu-cuda13]'` (cupy-cuda13x), or use --backend numpy."
        ) from None
    try:
        count = cupy.cuda.runtime.getDeviceCount()
    except Exception as exc:  # CUDA driver missing, no device, ...
        raise BackendError(
            f"minidl: CuPy is installed but no CUDA GPU is usable ({type(exc).__name__}: {exc}). "
            "Use the 'numpy' backend on this machine."
        ) from None
    if count == 0:
        raise BackendError("minidl: CuPy is installed but no CUDA GPU is visible; use the 'numpy' backend.")
    _cupy = cupy
    return cupy


def cupy_available() -> bool:
    """True when CuPy imports and at least one GPU is visible."""
    try:
        _load_cupy()
    except BackendError:
        return False
    return True


def resolve(name: str) -> str:
    """Turn a user's backend name (numpy, cupy, auto; any case) into numpy or cupy."""
    key = str(name).strip().lower()
    if key == "auto":
        return "cupy" if cupy_available() else "numpy"
    if key not in BACKENDS:
        raise BackendError(f"minidl: unknown backend {name!r}; expected one of 'numpy', 'cupy', 'auto'")
    if key == "cupy":
        _load_cupy()
    return key


def get_backend() -> str:
    """Name of the active backend: 'numpy' or 'cupy'."""
    global _active
    if _active is None:
        _active = resolve(os.environ.get("MINIDL_BACKEND", "numpy"))
    return _active


def set_backend(name: str) -> str:
    """Make ``name`` ('numpy', 'cupy' or 'auto') the active backend; returns the resolved name."""
    global _active
    _active = resolve(name)
    return _active


@contextlib.contextmanager
def backend(name: str):
    """``with minidl.backend("cupy"): ...`` creates new tensors on that backend inside the block."""
    global _active
    previous = get_backend()
    set_backend(name)
    try:
        yield _active
    finally:
        _active = previous


def array_module(name: str | None = None):
    """The array module of backend ``name`` (default: the active one)."""
    name = get_backend() if name is None else resolve(name)
    return _load_cupy() if name == "cupy" else np


def is_cupy_array(a) -> bool:
    if type(a) is np.ndarray:                 # the common case, answered without a string split
        return False
    return type(a).__module__.split(".")[0] == "cupy"


def backend_of(a) -> str:
    """'cupy' for a cupy.ndarray, 'numpy' for anything else."""
    return "cupy" if is_cupy_array(a) else "numpy"


def get_array_module(*arrays):
    """numpy or cupy, whichever holds ``arrays`` (numpy when none is a CuPy array)."""
    for a in arrays:
        if is_cupy_array(a):
            return _load_cupy()
    return np


def to_numpy(a) -> np.ndarray:
    """Copy a CuPy array to the host; NumPy arrays and scalars pass through as arrays."""
    if is_cupy_array(a):
        return a.get()
    return np.asarray(a)


def to_backend(a, name: str | None = None):
    """Move array ``a`` to backend ``name`` (default: active); no copy when it is already there."""
    name = get_backend() if name is None else resolve(name)
    if name == "numpy":
        return to_numpy(a)
    cupy = _load_cupy()
    return cupy.asarray(a)


def set_tf32(enabled: bool) -> None:
    """Let CuPy's float32 matrix products run on TF32 tensor cores (Ampere GPUs and newer), or stop them.

    TF32 rounds each factor to a 10-bit mantissa and accumulates in float32:
    several times the float32 speed on an H100, with about 1e-3 relative
    error per product. PyTorch allows it for convolutions by default; minidl
    does not, so results stay float32-exact unless a user asks
    (``--tf32`` in the training scripts). No effect on NumPy.
    """
    os.environ["CUPY_TF32"] = "1" if enabled else "0"      # read by CuPy at its first float32 product
    if _cupy is None:
        return
    try:
        from cupy._core import _routines_linalg as linalg     # once CuPy has read the variable, set it directly
        mode = linalg.COMPUTE_TYPE_TF32 if enabled else linalg.COMPUTE_TYPE_DEFAULT
        linalg.set_compute_type(np.float32, mode)
        linalg.set_compute_type(np.complex64, mode)
    except (ImportError, AttributeError):
        pass


def synchronize(name: str | None = None) -> None:
    """Wait for queued GPU work (a no-op on NumPy). Use it only when timing."""
    if (get_backend() if name is None else name) == "cupy":
        _load_cupy().cuda.get_current_stream().synchronize()
