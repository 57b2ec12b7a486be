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
"""
from .backends import BackendError, cupy_available, get_array_module, get_backend, set_backend
from .backends import backend
from .engine import Function, Tensor, enable_grad, is_grad_enabled, no_grad, tensor
from .gradcheck import GradcheckError, gradcheck
from .random import manual_seed
from . import functional

__version__ = "0.1.0"

__all__ = [
    "Tensor", "tensor", "Function", "no_grad", "enable_grad", "is_grad_enabled", "backend", "set_backend",
    "get_backend", "get_array_module", "cupy_available", "BackendError", "manual_seed", "gradcheck",
    "GradcheckError", "functional",
]
