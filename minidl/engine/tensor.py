"""`Tensor`: an array plus the bookkeeping that reverse-mode autograd needs.

``t.data`` is a plain ``numpy.ndarray`` or ``cupy.ndarray`` (the tensor's
backend), ``t.grad`` the gradient of the same shape once ``backward`` has run.
A tensor made by an op remembers that op as its ``creator``; following
creators back from a loss reaches every tensor that influenced it.

Arithmetic operators build the graph: ``(a @ b + 1).sum().backward()``.
"""
from __future__ import annotations

import numbers

import numpy as np

from .. import backends as _backend
from .backward import run_backward

DEFAULT_DTYPE = np.float32


class Tensor:
    __array_priority__ = 1000     # numpy scalars and arrays defer to Tensor's operators

    def __init__(self, data, requires_grad: bool = False):
        if not (isinstance(data, np.ndarray) or _backend.is_cupy_array(data)):
            raise TypeError(f"Tensor: data must be a numpy or cupy array, got {type(data).__name__}; use minidl.tensor(...)")
        self.data = data
        self.grad = None
        self.requires_grad = bool(requires_grad)
        self.creator = None          # the Function that made this tensor (None for a leaf)
        self.generation = 0
        self.output_index = 0

    # -- array facts -------------------------------------------------------
    shape = property(lambda self: self.data.shape)
    dtype = property(lambda self: self.data.dtype)
    ndim = property(lambda self: self.data.ndim)
    size = property(lambda self: self.data.size)
    backend = property(lambda self: _backend.backend_of(self.data))
    is_leaf = property(lambda self: self.creator is None)

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(_backend.to_numpy(self.data), precision=4, separator=", ", threshold=20, prefix="tensor(")
        extra = "" if self.dtype == DEFAULT_DTYPE else f", dtype={self.dtype}"
        extra += "" if self.backend == "numpy" else f", backend='{self.backend}'"
        extra += ", requires_grad=True" if self.requires_grad else ""
        return f"tensor({body}{extra})"

    # -- autograd ----------------------------------------------------------
    def backward(self, grad=None, retain_graph: bool = False) -> None:
        """Compute d(self)/d(leaf) for every leaf that requires grad, into ``leaf.grad``.

        ``grad`` defaults to 1 for a scalar; a non-scalar tensor needs it explicitly.
        """
        if not self.requires_grad:
            raise RuntimeError("backward: this tensor does not require grad (no input of its graph has requires_grad=True)")
        xp = _backend.get_array_module(self.data)
        if grad is None:
            if self.size != 1:
                raise RuntimeError(f"backward: grad can be implied only for a scalar, but this tensor has shape {tuple(self.shape)}")
            grad = xp.ones(self.shape, dtype=self.dtype)
        else:
            grad = grad.data if isinstance(grad, Tensor) else xp.asarray(grad, dtype=self.dtype)
            if grad.shape != self.shape:
                raise ValueError(f"backward: grad has shape {tuple(grad.shape)}, expected {tuple(self.shape)}")
        run_backward(self, grad, retain_graph=retain_graph)

    def detach(self) -> "Tensor":
        """The same data, cut off from the graph."""
        return Tensor(self.data, requires_grad=False)

    def requires_grad_(self, flag: bool = True) -> "Tensor":
        self.requires_grad = flag
        return self

    def zero_grad(self) -> None:
        self.grad = None

    # -- conversion ----------------------------------------------------------
    def item(self):
        if self.size != 1:
            raise ValueError(f"item: only a one-element tensor converts to a Python number, this one has shape {tuple(self.shape)}")
        return _backend.to_numpy(self.data).reshape(()).item()

    def numpy(self) -> np.ndarray:
        """The data as a NumPy array (a copy from the GPU on CuPy)."""
        return _backend.to_numpy(self.data)

    def to(self, backend: str) -> "Tensor":
        """This tensor on another backend ('numpy' or 'cupy'); a leaf stays a leaf."""
        data = _backend.to_backend(self.data, backend)
        if data is self.data:
            return self
        out = Tensor(data, requires_grad=self.requires_grad)
        if self.grad is not None:
            out.grad = _backend.to_backend(self.grad, backend)
        return out

    def astype(self, dtype) -> "Tensor":
        from ..functional.arithmetic import astype
        return astype(self, dtype)

    # -- operators (the ops live in minidl.functional) -----------------------
    def __add__(self, other):
        from ..functional.arithmetic import add
        return add(self, other)

    def __radd__(self, other):
        from ..functional.arithmetic import add
        return add(other, self)

    def __sub__(self, other):
        from ..functional.arithmetic import sub
        return sub(self, other)

    def __rsub__(self, other):
        from ..functional.arithmetic import sub
        return sub(other, self)

    def __mul__(self, other):
        from ..functional.arithmetic import mul
        return mul(self, other)

    def __rmul__(self, other):
        from ..functional.arithmetic import mul
        return mul(other, self)

    def __truediv__(self, other):
        from ..functional.arithmetic import div
        return div(self, other)

    def __rtruediv__(self, other):
        from ..functional.arithmetic import div
        return div(other, self)

    def __neg__(self):
        from ..functional.arithmetic import neg
        return neg(self)

    def __pow__(self, exponent):
        from ..functional.arithmetic import pow
        return pow(self, exponent)

    def __matmul__(self, other):
        from ..functional.arithmetic import matmul
        return matmul(self, other)

    def __rmatmul__(self, other):
        from ..functional.arithmetic import matmul
        return matmul(other, self)

    def __getitem__(self, index):
        from ..functional.shape import getitem
        return getitem(self, index)

    def exp(self):
        from ..functional.elementwise import exp
        return exp(self)

    def log(self):
        from ..functional.elementwise import log
        return log(self)

    def relu(self):
        from ..functional.activation import relu
        return relu(self)

    def sum(self, axis=None, keepdims: bool = False):
        from ..functional.reduction import sum
        return sum(self, axis=axis, keepdims=keepdims)

    def mean(self, axis=None, keepdims: bool = False):
        from ..functional.reduction import mean
        return mean(self, axis=axis, keepdims=keepdims)

    def max(self, axis=None, keepdims: bool = False):
        from ..functional.reduction import max
        return max(self, axis=axis, keepdims=keepdims)

    def reshape(self, *shape):
        from ..functional.shape import reshape
        return reshape(self, shape[0] if len(shape) == 1 and isinstance(shape[0], (tuple, list)) else shape)

    def transpose(self, *axes):
        from ..functional.shape import transpose
        return transpose(self, axes[0] if len(axes) == 1 and isinstance(axes[0], (tuple, list)) else (axes or None))

    @property
    def T(self):
        return self.transpose()


def tensor(data, requires_grad: bool = False, dtype=None, backend: str | None = None) -> Tensor:
    """Make a leaf Tensor from a list, a scalar or an array (copied to ``backend``, default: active).

    Python floats and lists of them become float32 (minidl's default); NumPy arrays keep their
    dtype, so a float64 array stays float64 (use it for gradient checks).
    """
    if isinstance(data, Tensor):
        data = data.data
    if isinstance(data, np.generic):           # a NumPy scalar keeps its dtype, like a NumPy array
        array = np.asarray(data)
    elif isinstance(data, (numbers.Number, list, tuple)):
        array = np.asarray(data)
        if array.dtype.kind == "f" and dtype is None:
            array = array.astype(DEFAULT_DTYPE)
    else:
        array = data
    array = _backend.to_backend(array, backend)
    if dtype is not None:
        array = array.astype(dtype, copy=False)
    if array is data:
        array = array.copy(order="K")      # keeps the memory layout (e.g. channels-last)
    if requires_grad and array.dtype.kind != "f":
        raise TypeError(f"tensor: only floating tensors can require grad, got dtype {array.dtype}")
    return Tensor(array, requires_grad=requires_grad)


def as_tensor(x, like: Tensor | None = None) -> Tensor:
    """Wrap ``x`` as a Tensor without copying; a Python number takes ``like``'s dtype and backend."""
    if isinstance(x, Tensor):
        return x
    if isinstance(x, numbers.Number):
        if like is not None:
            xp = _backend.get_array_module(like.data)
            return Tensor(xp.asarray(x, dtype=like.dtype))
        return Tensor(np.asarray(x, dtype=DEFAULT_DTYPE))
    if isinstance(x, np.ndarray) or _backend.is_cupy_array(x):
        return Tensor(x)
    return Tensor(np.asarray(x))
