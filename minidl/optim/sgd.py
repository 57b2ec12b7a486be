r"""Stochastic gradient descent with momentum, Nesterov momentum and weight decay.

The rule is PyTorch's. For a parameter :math:`p` with gradient :math:`g_t` at step :math:`t`:

.. math::

    g_t &\leftarrow g_t + \lambda\, p_{t-1}                                   &&\text{(weight decay, L2)}\\
    b_t &= g_t \ \text{ if } t = 1, \quad
           b_t = \mu\, b_{t-1} + (1 - \tau)\, g_t \ \text{ otherwise}        &&\text{(momentum buffer)}\\
    d_t &= g_t + \mu\, b_t \ \text{ (Nesterov)}, \quad d_t = b_t \ \text{ (classical)}\\
    p_t &= p_{t-1} - \eta\, d_t

with learning rate :math:`\eta` (``lr``), momentum :math:`\mu`, dampening :math:`\tau` and
weight decay :math:`\lambda`. With :math:`\mu = 0` there is no buffer and :math:`d_t = g_t`.

Note the buffer holds a sum of *gradients*, and ``lr`` multiplies it afterwards (Sutskever
et al. put ``lr`` inside the buffer instead); the two agree while ``lr`` is constant.

On CuPy, a step with momentum is one fused CUDA kernel per parameter (minidl/kernels/cuda.py)
instead of the five or six array operations below.
"""
from __future__ import annotations

from ..backends import get_array_module, is_cupy_array
from ..kernels import cuda
from .optimizer import Optimizer


class SGD(Optimizer):
    """Stochastic gradient descent: ``SGD(params, lr, momentum=0, dampening=0, nesterov=False, weight_decay=0)``.

    ``params``: Tensors or parameter groups (see :class:`~minidl.optim.Optimizer`). With
    ``momentum > 0`` each parameter keeps one buffer, ``state[p]["momentum_buffer"]`` (the
    :math:`b_t` above), created on its first step. ``nesterov=True`` needs ``momentum > 0``
    and ``dampening = 0``, as in PyTorch. Parameters whose ``grad`` is None are skipped.
    """

    def __init__(self, params, lr: float, momentum: float = 0.0, dampening: float = 0.0,
                 nesterov: bool = False, weight_decay: float = 0.0):
        defaults = dict(lr=lr, momentum=momentum, dampening=dampening, nesterov=nesterov,
                        weight_decay=weight_decay)
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict) -> None:
        super()._check_hyperparameters(group)
        for key in ("momentum", "weight_decay"):
            if not group[key] >= 0:
                raise ValueError(f"SGD: {key} must be >= 0, got {group[key]}")
        if group["nesterov"] and (group["momentum"] <= 0 or group["dampening"] != 0):
            raise ValueError(f"SGD: nesterov=True needs momentum > 0 and dampening 0, "
                             f"got momentum={group['momentum']}, dampening={group['dampening']}")

    def _update(self, param, grad, state: dict, group: dict) -> None:
        lr, momentum, dampening = group["lr"], group["momentum"], group["dampening"]
        weight_decay = group["weight_decay"]
        if momentum != 0 and is_cupy_array(param) and grad.dtype == param.dtype:
            first = state.get("momentum_buffer") is None
            if first:
                state["momentum_buffer"] = get_array_module(param).empty_like(param)
            cuda.sgd_momentum(param, grad, state["momentum_buffer"], lr, momentum, dampening, weight_decay,
                              group["nesterov"], first)
            return
        if weight_decay != 0:
            grad = grad + weight_decay * param                 # a new array: p.grad stays untouched
        if momentum != 0:
            buf = state.get("momentum_buffer")
            if buf is None:                                    # first step: the buffer is the gradient
                buf = state["momentum_buffer"] = grad.astype(param.dtype, copy=True)
            else:
                buf *= momentum
                buf += grad if dampening == 0 else (1 - dampening) * grad
            direction = grad + momentum * buf if group["nesterov"] else buf
        else:
            direction = grad
        param -= lr * direction
