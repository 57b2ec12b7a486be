r"""Learning-rate schedules: each one sets ``group["lr"]`` of an optimizer, step by step.

The names, arguments and semantics are PyTorch's (``torch.optim.lr_scheduler``)::

    optimizer = SGD(model.parameters(), lr=0.1, momentum=0.9)
    schedule = StepLR(optimizer, step_size=30, gamma=0.1)
    for epoch in range(90):
        train_one_epoch(...)            # optimizer.step() inside
        schedule.step()                 # after the optimizer, once per epoch (or per batch)

A schedule counts its calls in ``last_epoch`` (0 right after construction: building a
schedule already applies the rate of step 0 to the optimizer). Each parameter group keeps
its own base rate in ``group["initial_lr"]``, so groups with different rates are scaled
together. With :math:`\eta_0` the base rate and :math:`t` = ``last_epoch``:

=====================  ===========================================================================
``StepLR``             :math:`\eta_0\, \gamma^{\lfloor t / s \rfloor}`
``MultiStepLR``        :math:`\eta_0\, \gamma^{\#\{\text{milestones} \le t\}}`
``CosineAnnealingLR``  :math:`\eta_{min} + (\eta_0 - \eta_{min})\,(1 + \cos(\pi t / T_{max}))/2`
``OneCycleLR``         warm up from ``max_lr / div_factor`` to ``max_lr``, then anneal to
                       ``max_lr / (div_factor * final_div_factor)`` (Smith & Topin, 2018)
``ReduceLROnPlateau``  :math:`\eta \leftarrow \max(\eta \cdot \text{factor}, \eta_{min})` when a
                       metric has not improved for ``patience`` epochs
=====================  ===========================================================================

The rates are computed in closed form from ``last_epoch`` (PyTorch updates some of them
recursively; the two agree to rounding), so a schedule never drifts and a run restored with
``load_state_dict`` continues exactly. ``state_dict()`` holds plain Python values only, never
the optimizer: save the optimizer's own ``state_dict()`` beside it.
"""
from __future__ import annotations

import bisect
import copy
import math

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "OneCycleLR", "ReduceLROnPlateau"]


class _ScheduleState:
    """What every schedule shares: the last rates, and saving/restoring its own attributes."""

    def get_last_lr(self) -> list[float]:
        """The rates set by the last :meth:`step` (one per parameter group)."""
        return list(self._last_lr)

    def state_dict(self) -> dict:
        """Every attribute except the optimizer, as plain Python values."""
        return {key: copy.deepcopy(value) for key, value in self.__dict__.items() if key != "optimizer"}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore what :meth:`state_dict` saved (the optimizer's rates come from its own state)."""
        self.__dict__.update(copy.deepcopy(state_dict))


class LRScheduler(_ScheduleState):
    """Base class of the schedules that compute the rate from the step count ``last_epoch``.

    A subclass implements :meth:`get_lr`, the list of rates (one per parameter group) at
    step ``self.last_epoch``.
    """

    def __init__(self, optimizer, last_epoch: int = -1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"{type(self).__name__}: expected an Optimizer, got {type(optimizer).__name__}")
        self.optimizer = optimizer
        if last_epoch == -1:                                 # a new run: remember each group's base rate
            for group in optimizer.param_groups:
                group.setdefault("initial_lr", group["lr"])
        else:                                                # resuming: the base rates must be there
            for k, group in enumerate(optimizer.param_groups):
                if "initial_lr" not in group:
                    raise KeyError(f"{type(self).__name__}: param_groups[{k}] has no 'initial_lr', "
                                   f"needed when resuming with last_epoch={last_epoch}")
        self.base_lrs = [group["initial_lr"] for group in optimizer.param_groups]
        self.last_epoch = last_epoch
        self.step()                                          # apply the rate of step last_epoch + 1

    def get_lr(self) -> list[float]:
        """The rate of every parameter group at step ``last_epoch``."""
        raise NotImplementedError(f"{type(self).__name__} does not implement get_lr")

    def step(self) -> None:
        """Advance one step and set every group's ``lr``."""
        self.last_epoch += 1
        lrs = self.get_lr()
        for group, lr in zip(self.optimizer.param_groups, lrs):
            group["lr"] = lr
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def __repr__(self) -> str:
        return f"{type(self).__name__}(last_epoch={self.last_epoch}, lr={self.get_last_lr()})"


class StepLR(LRScheduler):
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr = initial_lr * gamma ** (t // step_size)``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1):
        if not (isinstance(step_size, int) and step_size > 0):
            raise ValueError(f"StepLR: step_size must be a positive int, got {step_size!r}")
        self.step_size = step_size
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        factor = self.gamma ** (self.last_epoch // self.step_size)
        return [base_lr * factor for base_lr in self.base_lrs]


class MultiStepLR(LRScheduler):
    """Multiply the rate by ``gamma`` at each milestone: ``lr = initial_lr * gamma ** (milestones passed)``.

    A milestone listed twice counts twice, as in PyTorch.
    """

    def __init__(self, optimizer, milestones, gamma: float = 0.1, last_epoch: int = -1):
        milestones = list(milestones)
        if not all(isinstance(m, int) and m >= 0 for m in milestones):
            raise ValueError(f"MultiStepLR: milestones must be non-negative ints, got {milestones!r}")
        self.milestones = sorted(milestones)
        self.gamma = gamma
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        passed = bisect.bisect_right(self.milestones, self.last_epoch)
        factor = self.gamma ** passed
        return [base_lr * factor for base_lr in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    r"""Half a cosine from the base rate down to ``eta_min`` over ``T_max`` steps.

    ``lr = eta_min + (initial_lr - eta_min) * (1 + cos(pi * t / T_max)) / 2`` (PyTorch's closed
    form; after ``T_max`` steps the cosine climbs back up, it is periodic with period ``2 T_max``).
    """

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1):
        if not T_max > 0:
            raise ValueError(f"CosineAnnealingLR: T_max must be > 0, got {T_max!r}")
        self.T_max = T_max
        self.eta_min = eta_min
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        cosine = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (base_lr - self.eta_min) * cosine for base_lr in self.base_lrs]


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2018), stepped after every batch, PyTorch's two-phase version.

    With ``initial = max_lr / div_factor`` and ``final = initial / final_div_factor``:

    * phase 1, steps 0 .. ``pct_start * total_steps - 1``: anneal ``initial`` -> ``max_lr``;
    * phase 2, up to step ``total_steps - 1``: anneal ``max_lr`` -> ``final``;

    where annealing from ``a`` to ``b`` over the fraction ``x`` of a phase is
    ``b + (a - b) * (1 + cos(pi * x)) / 2`` ("cos") or ``a + (b - a) * x`` ("linear").
    ``max_lr`` is a number or a list with one rate per parameter group; the optimizer's own
    ``lr`` is overwritten. Stepping more than ``total_steps`` times raises ValueError.
    Unlike PyTorch (``cycle_momentum=True``), the momentum is left alone.
    """

    def __init__(self, optimizer, max_lr, total_steps: int, pct_start: float = 0.3, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, anneal_strategy: str = "cos", last_epoch: int = -1):
        groups = optimizer.param_groups
        if not (isinstance(total_steps, int) and total_steps > 0):
            raise ValueError(f"OneCycleLR: total_steps must be a positive int, got {total_steps!r}")
        if not (isinstance(pct_start, (int, float)) and 0 <= pct_start <= 1):
            raise ValueError(f"OneCycleLR: pct_start must be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        if isinstance(max_lr, (list, tuple)):
            if len(max_lr) != len(groups):
                raise ValueError(f"OneCycleLR: expected {len(groups)} values of max_lr (one per parameter "
                                 f"group), got {len(max_lr)}")
            max_lrs = [float(lr) for lr in max_lr]
        else:
            max_lrs = [float(max_lr)] * len(groups)
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.max_lrs = max_lrs
        self.min_lrs = [lr / div_factor / final_div_factor for lr in max_lrs]
        # Each phase: (last step of the phase, name of the start rate list, name of the end rate list)
        self.phases = [[float(pct_start * total_steps) - 1, "base_lrs", "max_lrs"],
                       [float(total_steps - 1), "max_lrs", "min_lrs"]]
        if last_epoch == -1:
            for group, lr in zip(groups, max_lrs):
                group["initial_lr"] = lr / div_factor        # the cycle starts here, whatever group["lr"] was
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)
        return start + (end - start) * fraction

    def get_lr(self) -> list[float]:
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is {self.total_steps}")
        lrs = []
        for k in range(len(self.base_lrs)):
            phase_start = 0.0
            for i, (phase_end, start_name, end_name) in enumerate(self.phases):
                if step <= phase_end or i == len(self.phases) - 1:
                    fraction = (step - phase_start) / (phase_end - phase_start)
                    lrs.append(self._anneal(getattr(self, start_name)[k], getattr(self, end_name)[k], fraction))
                    break
                phase_start = phase_end
        return lrs


class ReduceLROnPlateau(_ScheduleState):
    """Divide the rate by ``1 / factor`` when a metric has stopped improving; ``step(metric)`` once per epoch.

    The metric is "better" when it beats a bar set by ``best``: in mode "max" the bar is
    ``best * (1 + threshold)`` (relative) or ``best + threshold`` (absolute); in mode "min"
    ``best * (1 - threshold)`` or ``best - threshold``. After more than ``patience`` epochs without improvement,
    every group's rate becomes ``max(lr * factor, min_lr)`` (changes smaller than ``eps`` are
    skipped), then ``cooldown`` epochs pass before bad epochs are counted again.

    The default ``mode="max"`` suits validation accuracy, the NIN paper's recipe ("divide the
    learning rate by 10 when the accuracy stops improving"); PyTorch's default is "min" (a loss).
    """

    def __init__(self, optimizer, mode: str = "max", factor: float = 0.1, patience: int = 10,
                 threshold: float = 1e-4, threshold_mode: str = "rel", cooldown: int = 0, min_lr=0.0,
                 eps: float = 1e-8):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"ReduceLROnPlateau: expected an Optimizer, got {type(optimizer).__name__}")
        if mode not in ("min", "max"):
            raise ValueError(f"ReduceLROnPlateau: mode must be 'min' or 'max', got {mode!r}")
        if threshold_mode not in ("rel", "abs"):
            raise ValueError(f"ReduceLROnPlateau: threshold_mode must be 'rel' or 'abs', got {threshold_mode!r}")
        if not 0 <= factor < 1:
            raise ValueError(f"ReduceLROnPlateau: factor must be in [0, 1), got {factor!r}")
        groups = optimizer.param_groups
        if isinstance(min_lr, (list, tuple)):
            if len(min_lr) != len(groups):
                raise ValueError(f"ReduceLROnPlateau: expected {len(groups)} values of min_lr (one per "
                                 f"parameter group), got {len(min_lr)}")
            self.min_lrs = [float(lr) for lr in min_lr]
        else:
            self.min_lrs = [float(min_lr)] * len(groups)
        self.optimizer = optimizer
        self.mode, self.factor, self.patience = mode, factor, patience
        self.threshold, self.threshold_mode = threshold, threshold_mode
        self.cooldown, self.eps = cooldown, eps
        self.last_epoch = 0
        self.best = -math.inf if mode == "max" else math.inf
        self.num_bad_epochs = 0                               # epochs since the last improvement
        self.cooldown_counter = 0                             # epochs left before counting again
        self._last_lr = [group["lr"] for group in groups]

    def is_better(self, metric: float, best: float) -> bool:
        """Whether ``metric`` improves on ``best`` by more than the threshold."""
        sign = 1 if self.mode == "max" else -1               # +1: larger is better, -1: smaller is better
        if self.threshold_mode == "rel":
            bar = best * (1 + sign * self.threshold)          # PyTorch's rule, also for negative best
        else:
            bar = best + sign * self.threshold
        return metric > bar if self.mode == "max" else metric < bar

    def step(self, metric) -> None:
        """Record this epoch's metric (e.g. validation accuracy) and reduce the rates if it has plateaued."""
        current = float(metric)                               # a host value; once per epoch is fine
        self.last_epoch += 1
        if self.is_better(current, self.best):
            self.best = current
            self.num_bad_epochs = 0
        else:
            self.num_bad_epochs += 1
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.num_bad_epochs = 0                           # bad epochs during cooldown do not count
        if self.num_bad_epochs > self.patience:
            self._reduce_lr()
            self.cooldown_counter = self.cooldown
            self.num_bad_epochs = 0
        self._last_lr = [group["lr"] for group in self.optimizer.param_groups]

    def _reduce_lr(self) -> None:
        for group, min_lr in zip(self.optimizer.param_groups, self.min_lrs):
            old_lr = float(group["lr"])
            new_lr = max(old_lr * self.factor, min_lr)
            if old_lr - new_lr > self.eps:
                group["lr"] = new_lr

    @property
    def in_cooldown(self) -> bool:
        return self.cooldown_counter > 0

    def __repr__(self) -> str:
        return (f"ReduceLROnPlateau(mode={self.mode!r}, best={self.best}, num_bad_epochs={self.num_bad_epochs}, "
                f"lr={self.get_last_lr()})")
