"""The autograd engine: Tensor, Function and the backward pass."""
from .function import Function, enable_grad, is_grad_enabled, no_grad
from .tensor import DEFAULT_DTYPE, Tensor, as_tensor, tensor

__all__ = ["Function", "Tensor", "tensor", "as_tensor", "no_grad", "enable_grad", "is_grad_enabled", "DEFAULT_DTYPE"]
