"""A restricted unpickler for the official CIFAR-10/100 "python version" batch files.

Unpickling an ordinary pickle can call any function the file names (``os.system`` included), so a
downloaded archive could run code on the machine that opens it. The CIFAR batches hold only plain
data: a dict with bytes keys of lists, ints, bytes strings and uint8 NumPy arrays, pickled by Python 2
(and, in the files this package writes for tests, by Python 3). :func:`loads` admits exactly what
those files need and refuses everything else with :class:`UnsafePickleError` before calling it:

* the containers and scalars pickle builds by itself: dict, list, tuple, str, bytes, int, float,
  bool, None (no globals are involved);
* ``_codecs.encode(text, "latin1")``: how a Python 3 pickle of protocol 2 spells a bytes object;
* a NumPy array, in the two ways NumPy pickles one, checked before any array exists:
  ``numpy.core.multiarray._reconstruct(numpy.ndarray, (0,), b"b")`` followed by its state
  ``(version, shape, dtype, is_fortran, raw bytes)`` (protocols 2 to 4, NumPy 1 or 2 module
  names), or ``numpy._core.numeric._frombuffer(raw, dtype, shape, order)`` (protocol 5);
  the dtype must be uint8 or int64 (``numpy.dtype("u1")`` / ``("i8")``, plain, no fields), the
  shape a tuple of ints whose product times the item size is the length of the raw bytes.
"""
from __future__ import annotations

import io
import pickle

import numpy as np

#: the dtypes an array in a CIFAR file may have
ALLOWED_DTYPES = {"u1": np.dtype(np.uint8), "i8": np.dtype(np.int64)}
_RECONSTRUCT = {("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct")}
_FROMBUFFER = {("numpy.core.numeric", "_frombuffer"), ("numpy._core.numeric", "_frombuffer")}


class UnsafePickleError(pickle.UnpicklingError, ValueError):
    """The pickle asks for something a CIFAR batch never holds (a function, a class, another dtype)."""


class _DtypeSpec:
    """Stands for ``numpy.dtype(code, False, True)`` until its state confirms a plain uint8/int64 dtype."""

    def __init__(self, code, align=False, copy=True):
        if not isinstance(code, str) or code not in ALLOWED_DTYPES:
            raise UnsafePickleError(f"an array of dtype {code!r} (only uint8 and int64 are admitted)")
        self.dtype = ALLOWED_DTYPES[code]

    def __setstate__(self, state):
        # NumPy's dtype state: (version, byte order, subarray, names, fields, elsize, alignment, flags)
        if (not isinstance(state, tuple) or len(state) < 5 or state[1] not in ("<", "|", "=")
                or any(part is not None for part in state[2:5])):
            raise UnsafePickleError(f"a dtype with state {state!r} (only plain little-endian uint8 and int64)")


class _ArraySpec:
    """Stands for ``numpy.ndarray`` being rebuilt by ``_reconstruct``; its state becomes the array."""

    def __init__(self):
        self.array = None

    def __setstate__(self, state):
        if not isinstance(state, tuple) or len(state) != 5:
            raise UnsafePickleError("an array state that is not (version, shape, dtype, is_fortran, data)")
        _, shape, dtype, is_fortran, raw = state
        self.array = _array_from(raw, dtype, shape, "F" if is_fortran else "C")


def _array_from(raw, dtype, shape, order: str) -> np.ndarray:
    if not isinstance(dtype, _DtypeSpec):
        raise UnsafePickleError("an array whose dtype was not built by numpy.dtype('u1' or 'i8')")
    if not isinstance(shape, tuple) or not all(isinstance(s, int) and s >= 0 for s in shape):
        raise UnsafePickleError(f"an array shape {shape!r} that is not a tuple of ints")
    if isinstance(raw, str):                         # Python 2 str read with encoding="latin1"
        raw = raw.encode("latin1")
    if not isinstance(raw, (bytes, bytearray)):
        raise UnsafePickleError(f"array data of type {type(raw).__name__} (expected bytes)")
    count = int(np.prod(shape, dtype=np.int64)) if shape else 1
    if count * dtype.dtype.itemsize != len(raw):
        raise UnsafePickleError(f"array data of {len(raw)} bytes for shape {shape} of {dtype.dtype}")
    flat = np.frombuffer(bytes(raw), dtype=dtype.dtype.newbyteorder("<")).astype(dtype.dtype)
    return flat.reshape(shape, order=order)


def _reconstruct(cls, shape, typecode):
    if cls is not _ArraySpec or shape != (0,) or typecode not in (b"b", "b"):
        raise UnsafePickleError("numpy's _reconstruct called with other arguments than (ndarray, (0,), b'b')")
    return _ArraySpec()


def _frombuffer(raw, dtype, shape, order):
    if order not in ("C", "F"):
        raise UnsafePickleError(f"an array order {order!r}")
    return _array_from(bytes(raw) if isinstance(raw, (bytearray, memoryview)) else raw, dtype, shape, order)


def _latin1_encode(text, encoding="latin1"):
    if not isinstance(text, str) or encoding not in ("latin1", "latin-1"):
        raise UnsafePickleError("_codecs.encode called with other arguments than (str, 'latin1')")
    return text.encode("latin1")


class _CifarUnpickler(pickle.Unpickler):
    def find_class(self, module, name):
        if (module, name) in _RECONSTRUCT:
            return _reconstruct
        if (module, name) in _FROMBUFFER:
            return _frombuffer
        if (module, name) == ("numpy", "ndarray"):
            return _ArraySpec
        if (module, name) == ("numpy", "dtype"):
            return _DtypeSpec
        if (module, name) == ("_codecs", "encode"):
            return _latin1_encode
        raise UnsafePickleError(f"the pickle asks for {module}.{name}, which a CIFAR batch never holds "
                                "(refused: unpickling it could run code)")


def _arrays_in_place(value):
    """Replace every _ArraySpec left by ``_reconstruct`` with its array (in dicts, lists, tuples)."""
    if isinstance(value, _ArraySpec):
        if value.array is None:
            raise UnsafePickleError("an array that was never given its data")
        return value.array
    if isinstance(value, dict):
        return {k: _arrays_in_place(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_arrays_in_place(v) for v in value]
    if isinstance(value, tuple):
        return tuple(_arrays_in_place(v) for v in value)
    if isinstance(value, (_DtypeSpec,)):
        return value.dtype
    return value


def loads(data: bytes, name: str = "pickle", encoding: str = "bytes"):
    """Unpickle ``data`` admitting only what a CIFAR batch holds (see module docstring).

    ``encoding="bytes"`` keeps Python 2 strings as bytes, as the official files' keys (``b"data"``) are.
    Raises :class:`UnsafePickleError` (naming ``name`` and what was asked for) for anything else, and
    ``pickle.UnpicklingError`` for a damaged file.
    """
    try:
        value = _CifarUnpickler(io.BytesIO(data), encoding=encoding).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{name}: {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
        raise pickle.UnpicklingError(f"{name}: not a readable pickle ({type(exc).__name__}: {exc})") from None
    return _arrays_in_place(value)
