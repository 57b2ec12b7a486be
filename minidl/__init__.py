"""minidl: a small deep learning engine on NumPy and CuPy, built around Network In Network.

    import minidl
    import minidl.functional as F
    from minidl import nn, optim

The package is laid out as the architecture:

* ``minidl.backend``, ``minidl.random``: the NumPy/CuPy switch and seeded random numbers
* ``minidl.engine``: Tensor, Function, the backward pass
* ``minidl.kernels``: array algorithms (im2col, pooling, memory layout)
* ``minidl.functional``: differentiable functions (conv2d, max_pool2d, ...)
* ``minidl.nn``: layers with parameters (Conv2d, MLPConv, ...), ``minidl.optim``: optimizers
* ``minidl.data``: data sets and pipelines, ``minidl.models``: NIN
* ``minidl.train``: the training loop, checkpoints and the NIN recipe

``import minidl`` is enough to reach each of them as an attribute (``minidl.optim.SGD``):
the ones not imported yet are imported on first use, so ``import minidl`` stays quick.
"""
import importlib as _importlib

from .backends import BackendError, cupy_available, get_array_module, get_backend, set_backend
from .backends import backend
from .engine import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from .serialization import load, save
from . import functional

__version__ = "0.1.0"

#: subpackages imported on first attribute access (PEP 562), so that e.g. the data loaders
#: and matplotlib behind minidl.train are not loaded by a plain ``import minidl``
_LAZY_SUBMODULES = ("nn", "optim", "data", "models", "train", "kernels", "engine", "backends", "random", "onnx")


def __getattr__(name):
    if name in _LAZY_SUBMODULES:
        return _importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'minidl' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES))

__all__ = [
    "Tensor", "tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "backend", "set_backend",
    "get_backend", "get_array_module", "cupy_available", "BackendError", "manual_seed", "gradcheck",
    "GradcheckError", "functional", "save", "load",
]
