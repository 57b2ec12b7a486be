"""Making parameter arrays on the active backend (shared by the layers)."""
from __future__ import annotations


from .. import backends
from ..engine.tensor import DEFAULT_DTYPE
from .parameter import Parameter


def new_parameter(*shape, dtype=DEFAULT_DTYPE) -> Parameter:
    """A zero-filled Parameter on the active backend (the layer's initializer fills it)."""
    return Parameter(backends.array_module().zeros(shape, dtype=dtype))


def new_buffer(shape, fill: float, dtype=DEFAULT_DTYPE):
    return backends.array_module().full(shape, fill, dtype=dtype)
