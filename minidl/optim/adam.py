r"""Adam (Kingma & Ba, 2015) and AdamW (Loshchilov & Hutter, 2019), with PyTorch's rules.

Adam keeps two running averages per parameter, of the gradient and of its square:

.. math::

    m_t &= \beta_1 m_{t-1} + (1 - \beta_1)\, g_t           &&\text{(first moment)}\\
    v_t &= \beta_2 v_{t-1} + (1 - \beta_2)\, g_t^2         &&\text{(second moment)}\\
    \hat m_t &= m_t / (1 - \beta_1^t), \quad
    \hat v_t  = v_t / (1 - \beta_2^t)                      &&\text{(bias correction: } m_0 = v_0 = 0)\\
    p_t &= p_{t-1} - \eta\, \hat m_t / (\sqrt{\hat v_t} + \epsilon)

so every coordinate moves by about ``lr`` at most, whatever the scale of its gradient.

With ``amsgrad=True`` (Reddi et al., 2018) the denominator uses the largest second moment
seen so far, :math:`\hat v_t = \max_{s \le t} v_s / (1 - \beta_2^t)`, so the step size never grows
back after a burst of large gradients.

Weight decay :math:`\lambda` comes in two flavours:

* ``Adam``: L2 regularization, added to the gradient, :math:`g_t \leftarrow g_t + \lambda p_{t-1}`.
  The decay then passes through the adaptive scaling, so large-gradient weights decay less.
* ``AdamW``: *decoupled* decay, applied to the weights before the Adam step,
  :math:`p_{t-1} \leftarrow (1 - \eta\lambda)\, p_{t-1}`, the same for every weight.

Per-parameter state (PyTorch's names): ``step`` (the count :math:`t`, a Python int, so the bias
corrections are computed on the host without touching the device), ``exp_avg`` (:math:`m`),
``exp_avg_sq`` (:math:`v`) and, with ``amsgrad``, ``max_exp_avg_sq``.
"""
from __future__ import annotations

import math

from ..backends import get_array_module
from .optimizer import Optimizer


class Adam(Optimizer):
    r"""``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0, amsgrad=False)``.

    ``weight_decay`` is L2 regularization, added to the gradient (use :class:`AdamW` for the
    decoupled kind). ``betas`` are :math:`(\beta_1, \beta_2)`, ``eps`` is added to
    :math:`\sqrt{\hat v_t}` for numerical stability.
    """

    decoupled_weight_decay = False      # AdamW sets True: shrink the weights instead of adding L2 to g

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 0.0, amsgrad: bool = False):
        defaults = dict(lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay, amsgrad=bool(amsgrad))
        super().__init__(params, defaults)

    def _check_hyperparameters(self, group: dict) -> None:
        super()._check_hyperparameters(group)
        name = type(self).__name__
        betas = tuple(group["betas"])
        if len(betas) != 2 or not all(0 <= b < 1 for b in betas):
            raise ValueError(f"{name}: betas must be two numbers in [0, 1), got {group['betas']}")
        group["betas"] = betas
        for key in ("eps", "weight_decay"):
            if not group[key] >= 0:
                raise ValueError(f"{name}: {key} must be >= 0, got {group[key]}")

    def _update(self, param, grad, state: dict, group: dict) -> None:
        xp = get_array_module(param)
        lr, (beta1, beta2), eps, weight_decay = group["lr"], group["betas"], group["eps"], group["weight_decay"]
        if weight_decay != 0:
            if self.decoupled_weight_decay:
                param *= 1 - lr * weight_decay                 # AdamW: shrink the weights directly
            else:
                grad = grad + weight_decay * param             # Adam: L2 term in the gradient
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param)            # m
            state["exp_avg_sq"] = xp.zeros_like(param)         # v
        state["step"] += 1
        step, exp_avg, exp_avg_sq = state["step"], state["exp_avg"], state["exp_avg_sq"]

        exp_avg *= beta1
        exp_avg += (1 - beta1) * grad
        exp_avg_sq *= beta2
        exp_avg_sq += (1 - beta2) * (grad * grad)

        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        if group["amsgrad"]:                                   # the largest v so far, elementwise
            second_moment = state.get("max_exp_avg_sq")
            if second_moment is None:
                second_moment = state["max_exp_avg_sq"] = exp_avg_sq.copy()
            else:
                xp.maximum(second_moment, exp_avg_sq, out=second_moment)
        else:
            second_moment = exp_avg_sq
        denom = xp.sqrt(second_moment)                         # sqrt(v_hat) + eps, in one buffer
        denom /= math.sqrt(bias_correction2)
        denom += eps
        update = exp_avg / denom
        update *= lr / bias_correction1
        param -= update


class AdamW(Adam):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False)``.

    Adam with *decoupled* weight decay: before each Adam step the weights are multiplied by
    ``1 - lr * weight_decay``; the gradient itself is left alone.
    """

    decoupled_weight_decay = True

    def __init__(self, params, lr: float = 1e-3, betas: tuple[float, float] = (0.9, 0.999), eps: float = 1e-8,
                 weight_decay: float = 1e-2, amsgrad: bool = False):
        super().__init__(params, lr=lr, betas=betas, eps=eps, weight_decay=weight_decay, amsgrad=amsgrad)
