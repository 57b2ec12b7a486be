"""``minidl.save`` and ``minidl.load``: nested dicts and lists of arrays in one file that runs no code.

    minidl.save({"model": model.state_dict(), "optimizer": opt.state_dict(), "epoch": 3}, "state.safetensors")
    state = minidl.load("state.safetensors")                   # arrays on the active backend
    state = minidl.load("state.safetensors", map_location="numpy")

The file is a `safetensors <https://github.com/huggingface/safetensors>`_ file: an 8-byte header length,
a JSON header (each tensor's dtype, shape and byte range), then the raw bytes of the tensors. Reading
it only parses JSON and copies bytes, so unlike a pickle it cannot run code, and PyTorch, JAX and the
Hugging Face tools read its tensors (``safetensors.numpy.load_file``, ``safetensors.torch.load_file``).

What goes where:

* every array (NumPy or CuPy; bool, int8..64, uint8..64, float16/32/64) becomes one tensor of the file,
  named by its place in the structure, keys joined by dots: ``state["model"]["conv.weight"]`` is the
  tensor ``model.conv.weight``. The bytes are copied from a C-contiguous little-endian copy of the array
  (a strided view is saved as the values it shows), and two references to one array become two copies.
* the structure and every other value go into one JSON document in the header's ``__metadata__``
  (key ``minidl``: ``{"format": "minidl", "version": 1, "structure": ...}``): a JSON number, string, true/false/null or list is itself; the rest is tagged,
  ``{"tensor": name}``, ``{"tuple": [...]}``, ``{"dict": {...}}`` (string keys),
  ``{"items": [[key, value], ...]}`` (other keys, e.g. an optimizer's parameter positions),
  ``{"float": "nan"}`` (the non-finite floats JSON lacks) and
  ``{"scalar": "float32", "value": 0.5}`` (a NumPy scalar). Python ints of any size are JSON integers
  (a NumPy Generator's 128-bit state fits), and floats are written with ``repr``, so every value comes
  back exactly, with its type.

Anything else (a function, an object, a set, bytes) is refused by :func:`save` with its place in the
structure, e.g. ``state['opt']['groups'][0]['fn']``. Writes are atomic: a temporary file in the same
folder, flushed to disk (fsync), then renamed over the target, so a crash leaves the old file or the new
one, never half of one.
"""
from __future__ import annotations

import json
import math
import os
import tempfile

import numpy as np

from . import backends

FORMAT = "minidl"
VERSION = 1
#: the ``__metadata__`` key holding the structure
STRUCTURE_KEY = "minidl"
#: dtypes a safetensors file holds (bfloat16 has no NumPy dtype)
DTYPES = frozenset(np.dtype(name) for name in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32", "float64"))
ALLOWED = "dicts, lists, tuples, NumPy or CuPy arrays, numbers, strings, booleans and None"


class SerializationError(ValueError):
    """A file that :func:`load` cannot read: not safetensors, truncated, or not written by :func:`save`."""


# -- saving ------------------------------------------------------------------------------------------
def save(obj, path, *, name: str = "obj") -> None:
    """Write ``obj`` (nested dicts/lists/tuples of arrays, numbers, strings, booleans, None) to ``path``.

    ``name`` is how error messages call the whole object (``obj['a'][0]``). Raises TypeError, naming the
    value's place in the structure, for anything that cannot be stored.
    """
    tensors = {}
    structure = _encode(obj, name, (), tensors)
    # one metadata entry: safetensors writes several in a random order, and the file should not vary
    document = {"format": FORMAT, "version": VERSION, "structure": structure}
    metadata = {STRUCTURE_KEY: json.dumps(document, allow_nan=False, separators=(",", ":"))}
    from safetensors.numpy import save_file
    atomic_write(path, lambda tmp: save_file(tensors, tmp, metadata=metadata))


def _encode(value, where: str, keys: tuple, tensors: dict):
    """The JSON node of ``value`` (at ``where``, reached by ``keys``); arrays go into ``tensors``."""
    if isinstance(value, np.generic):                      # before float: np.float64 is a float subclass
        if np.dtype(value.dtype) not in DTYPES:
            raise TypeError(f"minidl.save: cannot store {where}, a NumPy scalar of dtype {value.dtype}")
        return {"scalar": value.dtype.name, "value": _encode(value.item(), where, keys, tensors)}
    if value is None or isinstance(value, (bool, str)):
        return value
    if isinstance(value, int):
        return int(value)                                  # an int subclass (an IntEnum) as a plain int
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else {"float": repr(float(value))}
    if isinstance(value, np.ndarray) or backends.is_cupy_array(value):
        return _encode_array(value, where, keys, tensors)
    if isinstance(value, list):
        return [_encode(v, f"{where}[{i}]", keys + (i,), tensors) for i, v in enumerate(value)]
    if isinstance(value, tuple):
        return {"tuple": [_encode(v, f"{where}[{i}]", keys + (i,), tensors) for i, v in enumerate(value)]}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {"dict": {k: _encode(v, f"{where}[{k!r}]", keys + (k,), tensors) for k, v in value.items()}}
        items = []
        for k, v in value.items():
            if k is not None and not isinstance(k, (bool, int, float, str)):
                raise TypeError(f"minidl.save: cannot store {where}, a dict with a key {k!r} of type "
                                f"{type(k).__name__}; dict keys must be strings, numbers, booleans or None")
            items.append([_encode(k, f"{where} (a key)", keys, {}), _encode(v, f"{where}[{k!r}]", keys + (k,), tensors)])
        return {"items": items}
    kind = type(value).__name__
    raise TypeError(f"minidl.save: cannot store {where}, a {kind}; only {ALLOWED} can be saved "
                    "(a file that could hold other objects would have to run code to load them)")


def _encode_array(array, where: str, keys: tuple, tensors: dict) -> dict:
    host = backends.to_numpy(array)
    dtype = np.dtype(host.dtype)
    if dtype.newbyteorder("=") not in DTYPES:
        raise TypeError(f"minidl.save: cannot store {where}, an array of dtype {dtype}; safetensors holds "
                        "bool, int8..int64, uint8..uint64 and float16/32/64 arrays")
    scalar = host.ndim == 0
    # the bytes of what the view shows, little-endian (np.ascontiguousarray makes a 0-d array 1-d)
    host = np.ascontiguousarray(host.reshape(-1) if scalar else host, dtype=dtype.newbyteorder("<"))
    name = _tensor_name(keys, tensors)
    node = {"tensor": name}
    if scalar:                         # stored as shape (1,): not every safetensors version reads scalars
        node["shape"] = []
    tensors[name] = host
    return node


def _tensor_name(keys: tuple, taken: dict) -> str:
    """``keys`` joined by dots; a name already taken (keys with dots in them) gets a ``#n`` suffix."""
    name = ".".join(str(k) for k in keys) or "tensor"
    unique, n = name, 1
    while unique in taken:
        unique, n = f"{name}#{n}", n + 1
    return unique


def atomic_write(path, write) -> None:
    """Call ``write(temporary_path)``, fsync that file, then rename it to ``path`` (atomic on POSIX).

    On any error (or Ctrl-C) the temporary file is removed and ``path`` is left as it was.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{os.path.basename(path)}-", suffix=".tmp", dir=folder)
    os.close(fd)
    try:
        write(tmp)
        mask = os.umask(0)             # mkstemp made the file private (0600): give it the usual permissions
        os.umask(mask)
        os.chmod(tmp, 0o666 & ~mask)
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:                               # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


# -- loading -----------------------------------------------------------------------------------------
def is_safetensors(path) -> bool:
    """True when ``path`` starts like a safetensors file: an 8-byte length, then that many header bytes."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as f:
            head = f.read(9)
    except OSError:
        return False
    if len(head) < 9:
        return False
    header_length = int.from_bytes(head[:8], "little")
    return head[8:9] == b"{" and 8 + header_length <= size


def looks_like_pickle(path) -> bool:
    """True when ``path`` starts with a pickle's protocol marker (protocol 2 or later: b'\\x80' + version)."""
    try:
        with open(path, "rb") as f:
            head = f.read(2)
    except OSError:
        return False
    return len(head) == 2 and head[0] == 0x80 and 2 <= head[1] <= 5


def read_metadata(path) -> dict:
    """The ``__metadata__`` of a safetensors file (an empty dict when it has none)."""
    from safetensors import safe_open
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"minidl.load: no file at {path}")
    if not is_safetensors(path):
        raise SerializationError(f"{path} is not a safetensors file")
    try:
        with safe_open(path, framework="numpy") as f:
            return dict(f.metadata() or {})
    except Exception as exc:           # safetensors' own error type differs between versions
        raise SerializationError(f"{path} is not a readable safetensors file ({exc})") from None


def load(path, map_location: str | None = None):
    """Read what :func:`save` wrote; arrays go onto ``map_location`` ('numpy', 'cupy'; default: active).

    Raises FileNotFoundError for a missing file and :class:`SerializationError` (a ValueError) for a
    file that is not safetensors, is truncated, or holds no minidl structure.
    """
    from safetensors import safe_open
    path = os.fspath(path)
    backend = backends.get_backend() if map_location is None else backends.resolve(map_location)
    metadata = read_metadata(path)
    try:
        document = json.loads(metadata[STRUCTURE_KEY])
        if document.get("format") != FORMAT:
            raise ValueError
    except (KeyError, ValueError, AttributeError):
        raise SerializationError(f"{path} is a safetensors file but was not written by minidl.save (its metadata "
                                 "holds no minidl structure); read its tensors with safetensors.numpy.load_file") from None
    if not isinstance(document.get("version"), int) or document["version"] > VERSION:
        raise SerializationError(f"{path} was written by a newer minidl (format version {document.get('version')}, "
                                 f"this one reads up to {VERSION}); upgrade minidl")
    try:
        structure = document["structure"]
        with safe_open(path, framework="numpy") as f:
            names = set(f.keys())

            def tensor(node):
                if node["tensor"] not in names:
                    raise KeyError(f"the structure names a tensor {node['tensor']!r} the file lacks")
                array = f.get_tensor(node["tensor"])
                if "shape" in node:
                    array = array.reshape(node["shape"])
                return backends.to_backend(array, backend)

            return _decode(structure, tensor)
    except SerializationError:
        raise
    except Exception as exc:
        raise SerializationError(f"{path} holds a damaged minidl structure ({type(exc).__name__}: {exc})") from None


def _decode(node, tensor):
    if node is None or isinstance(node, (bool, int, float, str)):
        return node
    if isinstance(node, list):
        return [_decode(v, tensor) for v in node]
    if isinstance(node, dict) and len(node) >= 1:
        if "tensor" in node:
            return tensor(node)
        if "dict" in node:
            return {k: _decode(v, tensor) for k, v in node["dict"].items()}
        if "items" in node:
            return {_decode(k, tensor): _decode(v, tensor) for k, v in node["items"]}
        if "tuple" in node:
            return tuple(_decode(v, tensor) for v in node["tuple"])
        if "float" in node:
            return float(node["float"])
        if "scalar" in node:
            dtype = np.dtype(node["scalar"])
            if dtype not in DTYPES:
                raise ValueError(f"unknown scalar dtype {node['scalar']!r}")
            return dtype.type(_decode(node["value"], tensor))
    raise ValueError(f"unknown node {str(node)[:80]}")
