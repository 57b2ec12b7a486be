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
``LinearLR``           :math:`\eta_0\,(f_0 + (f_1 - f_0) \min(t, T) / T)`, factors :math:`f_0 \to f_1`
                       over :math:`T` steps: a linear warm-up
``SequentialLR``       one schedule after another, each restarting from its own step 0
``OneCycleLR``         warm up from ``max_lr / div_factor`` to ``max_lr``, then anneal to
                       ``max_lr / (div_factor * final_div_factor)`` (Smith & Topin, 2018)
``ReduceLROnPlateau``  :math:`\eta \leftarrow \max(\eta \cdot \text{factor}, \eta_{min})` when a
                       metric has not improved for ``patience`` epochs
=====================  ===========================================================================

Which step counts is up to you: most schedules are meant to step once per *epoch* (their
arguments are then numbers of epochs), ``OneCycleLR`` once per *batch*; each docstring says.
``ReduceLROnPlateau`` is different: ``step(metric)`` after each validation.

The rates are computed in closed form from ``last_epoch`` (PyTorch updates some of them
recursively; the two agree to rounding), so a schedule never drifts and a run restored with
``load_state_dict`` continues exactly. ``state_dict()`` holds plain Python values only, never
the optimizer: save the optimizer's own ``state_dict()`` beside it.
"""
from __future__ import annotations

import bisect
import copy
import math

__all__ = ["LRScheduler", "StepLR", "MultiStepLR", "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR",
           "ReduceLROnPlateau"]


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
    """Multiply the rate by ``gamma`` every ``step_size`` steps: ``lr = initial_lr * gamma ** (t // step_size)``.

    Usually stepped once per epoch, ``step_size`` then counting epochs.
    """

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

    A milestone listed twice counts twice, as in PyTorch. Usually stepped once per epoch.
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
    Stepped once per epoch (``T_max`` epochs) or once per batch (``T_max`` batches).
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


class LinearLR(LRScheduler):
    """Scale the base rate by a factor going linearly from ``start_factor`` to ``end_factor``; a warm-up.

    ``lr = initial_lr * (start_factor + (end_factor - start_factor) * min(t, total_iters) / total_iters)``,
    then constant. Stepped once per epoch or once per batch, whichever ``total_iters`` counts.
    A linear warm-up followed by another schedule is a :class:`SequentialLR`::

        warmup = LinearLR(opt, start_factor=0.1, total_iters=5)
        cosine = CosineAnnealingLR(opt, T_max=epochs - 5)
        schedule = SequentialLR(opt, [warmup, cosine], milestones=[5])
    """

    def __init__(self, optimizer, start_factor: float = 1.0 / 3, end_factor: float = 1.0, total_iters: int = 5,
                 last_epoch: int = -1):
        if not 0 < start_factor <= 1:
            raise ValueError(f"LinearLR: start_factor must be in (0, 1], got {start_factor!r}")
        if not 0 <= end_factor <= 1:
            raise ValueError(f"LinearLR: end_factor must be in [0, 1], got {end_factor!r}")
        if not (isinstance(total_iters, int) and total_iters > 0):
            raise ValueError(f"LinearLR: total_iters must be a positive int, got {total_iters!r}")
        self.start_factor, self.end_factor, self.total_iters = start_factor, end_factor, total_iters
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list[float]:
        progress = min(self.last_epoch, self.total_iters) / self.total_iters
        factor = self.start_factor + (self.end_factor - self.start_factor) * progress
        return [base_lr * factor for base_lr in self.base_lrs]


class SequentialLR(LRScheduler):
    """Run ``schedulers`` one after the other, switching at the steps listed in ``milestones``.

    Before ``milestones[0]`` the first schedule sets the rate, from ``milestones[0]`` to
    ``milestones[1]`` the second, which starts over from its own step 0 there, and so on.
    Build the schedules on the same optimizer first, then hand them over; from then on
    step only the SequentialLR. Its ``state_dict`` holds those of its schedules.
    """

    def __init__(self, optimizer, schedulers, milestones, last_epoch: int = -1):
        schedulers, milestones = list(schedulers), list(milestones)
        if not schedulers:
            raise ValueError("SequentialLR: expected at least one scheduler, got none")
        for k, schedule in enumerate(schedulers):
            if not isinstance(schedule, LRScheduler):
                raise TypeError(f"SequentialLR: schedulers[{k}] must be a step-count schedule (StepLR, "
                                f"LinearLR, ...), got {type(schedule).__name__}")
            if schedule.optimizer is not optimizer:
                raise ValueError(f"SequentialLR: schedulers[{k}] ({type(schedule).__name__}) belongs to "
                                 f"another optimizer")
        if len(milestones) != len(schedulers) - 1:
            raise ValueError(f"SequentialLR: expected {len(schedulers) - 1} milestones for {len(schedulers)} "
                             f"schedulers, got {len(milestones)}")
        if not all(isinstance(m, int) and m > 0 for m in milestones) or milestones != sorted(milestones):
            raise ValueError(f"SequentialLR: milestones must be increasing positive ints, got {milestones!r}")
        self._schedulers = schedulers
        self._milestones = milestones
        super().__init__(optimizer, last_epoch)

    def _active(self) -> tuple[LRScheduler, int]:
        """The schedule in charge at step ``last_epoch``, and its own step count there."""
        index = bisect.bisect_right(self._milestones, self.last_epoch)
        start = self._milestones[index - 1] if index > 0 else 0
        return self._schedulers[index], self.last_epoch - start

    def get_lr(self) -> list[float]:
        schedule, local_step = self._active()
        schedule.last_epoch = local_step
        return schedule.get_lr()

    def step(self) -> None:
        """Advance one step; the schedule in charge sets the rates (and whatever else it sets)."""
        self.last_epoch += 1
        schedule, local_step = self._active()
        schedule.last_epoch = local_step - 1
        schedule.step()
        self._last_lr = schedule.get_last_lr()

    def state_dict(self) -> dict:
        """This schedule's attributes, with ``_schedulers`` replaced by their own state dicts."""
        state = {key: copy.deepcopy(value) for key, value in self.__dict__.items()
                 if key not in ("optimizer", "_schedulers")}
        state["_schedulers"] = [schedule.state_dict() for schedule in self._schedulers]
        return state

    def load_state_dict(self, state_dict: dict) -> None:
        saved = dict(state_dict)
        children = saved.pop("_schedulers")
        if len(children) != len(self._schedulers):
            raise ValueError(f"SequentialLR.load_state_dict: the state has {len(children)} schedulers, "
                             f"this SequentialLR {len(self._schedulers)}")
        self.__dict__.update(copy.deepcopy(saved))
        for schedule, child_state in zip(self._schedulers, children):
            schedule.load_state_dict(child_state)


class OneCycleLR(LRScheduler):
    r"""The 1cycle policy (Smith & Topin, 2018), stepped after every *batch*; PyTorch's version.

    With ``initial = max_lr / div_factor`` and ``final = initial / final_div_factor``:

    * phase 1, steps 0 .. ``pct_start * total_steps - 1``: anneal ``initial`` -> ``max_lr``;
    * phase 2, up to step ``total_steps - 1``: anneal ``max_lr`` -> ``final``;

    or, with ``three_phase=True``: ``initial`` -> ``max_lr`` -> ``initial`` (two phases of
    ``pct_start * total_steps`` steps each), then ``initial`` -> ``final``. Annealing from
    ``a`` to ``b`` over the fraction ``x`` of a phase is ``b + (a - b) * (1 + cos(pi * x)) / 2``
    (``anneal_strategy="cos"``) or ``a + (b - a) * x`` (``"linear"``).

    ``total_steps``, or ``epochs`` and ``steps_per_epoch``, give the length of the cycle;
    stepping past ``total_steps`` raises ValueError. ``max_lr`` is a number or a list with
    one rate per parameter group (pass a list to keep e.g. biases at twice the weights'
    rate); the optimizer's own ``lr`` is ignored.

    With ``cycle_momentum=True`` the momentum (SGD's ``momentum``, Adam's ``beta1``) moves
    the other way, ``max_momentum`` -> ``base_momentum`` -> ``max_momentum``. **Unlike
    PyTorch, the default is False**: the momentum you gave the optimizer stays as it is.
    """

    def __init__(self, optimizer, max_lr, total_steps: int | None = None, epochs: int | None = None,
                 steps_per_epoch: int | None = None, pct_start: float = 0.3, anneal_strategy: str = "cos",
                 cycle_momentum: bool = False, base_momentum=0.85, max_momentum=0.95, div_factor: float = 25.0,
                 final_div_factor: float = 1e4, three_phase: bool = False, last_epoch: int = -1):
        if not hasattr(optimizer, "param_groups"):
            raise TypeError(f"OneCycleLR: expected an Optimizer, got {type(optimizer).__name__}")
        groups = optimizer.param_groups
        if total_steps is None:
            if epochs is None or steps_per_epoch is None:
                raise ValueError("OneCycleLR: give total_steps, or epochs and steps_per_epoch")
            for name, value in (("epochs", epochs), ("steps_per_epoch", steps_per_epoch)):
                if not (isinstance(value, int) and value > 0):
                    raise ValueError(f"OneCycleLR: {name} must be a positive int, got {value!r}")
            total_steps = epochs * steps_per_epoch
        if not (isinstance(total_steps, int) and total_steps > 0):
            raise ValueError(f"OneCycleLR: total_steps must be a positive int, got {total_steps!r}")
        if not (isinstance(pct_start, (int, float)) and 0 <= pct_start <= 1):
            raise ValueError(f"OneCycleLR: pct_start must be a number in [0, 1], got {pct_start!r}")
        if anneal_strategy not in ("cos", "linear"):
            raise ValueError(f"OneCycleLR: anneal_strategy must be 'cos' or 'linear', got {anneal_strategy!r}")
        self.total_steps = total_steps
        self.anneal_strategy = anneal_strategy
        self.max_lrs = _per_group("OneCycleLR", "max_lr", max_lr, len(groups))
        self.initial_lrs = [lr / div_factor for lr in self.max_lrs]
        self.min_lrs = [lr / final_div_factor for lr in self.initial_lrs]
        # Each phase: [last step of the phase, start rates, end rates, start momenta, end momenta],
        # the rates and momenta named by the attribute that holds them (one value per group).
        up = float(pct_start * total_steps) - 1
        if three_phase:
            self.phases = [[up, "initial_lrs", "max_lrs", "max_momentums", "base_momentums"],
                           [float(2 * pct_start * total_steps) - 2, "max_lrs", "initial_lrs",
                            "base_momentums", "max_momentums"],
                           [float(total_steps - 1), "initial_lrs", "min_lrs", "max_momentums", "max_momentums"]]
        else:
            self.phases = [[up, "initial_lrs", "max_lrs", "max_momentums", "base_momentums"],
                           [float(total_steps - 1), "max_lrs", "min_lrs", "base_momentums", "max_momentums"]]

        self.cycle_momentum = bool(cycle_momentum)
        if self.cycle_momentum:
            if "momentum" not in optimizer.defaults and "betas" not in optimizer.defaults:
                raise ValueError(f"OneCycleLR: cycle_momentum=True needs an optimizer with 'momentum' or "
                                 f"'betas', got {type(optimizer).__name__}")
            self.use_beta1 = "betas" in optimizer.defaults
            self.base_momentums = _per_group("OneCycleLR", "base_momentum", base_momentum, len(groups))
            self.max_momentums = _per_group("OneCycleLR", "max_momentum", max_momentum, len(groups))
        if last_epoch == -1:
            for group, lr in zip(groups, self.initial_lrs):
                group["initial_lr"] = lr                     # the cycle starts here, whatever group["lr"] was
        super().__init__(optimizer, last_epoch)

    def _anneal(self, start: float, end: float, fraction: float) -> float:
        if self.anneal_strategy == "cos":
            return end + (start - end) / 2 * (math.cos(math.pi * fraction) + 1)
        return start + (end - start) * fraction

    def _position(self) -> tuple[list, float]:
        """The phase that step ``last_epoch`` falls in, and how far into it (0 at its start, 1 at its end)."""
        step = self.last_epoch
        if step > self.total_steps:
            raise ValueError(f"OneCycleLR: tried to step {step} times, but total_steps is {self.total_steps}")
        phase_start = 0.0
        for i, phase in enumerate(self.phases):
            phase_end = phase[0]
            if step <= phase_end or i == len(self.phases) - 1:
                return phase, (step - phase_start) / (phase_end - phase_start)
            phase_start = phase_end
        raise AssertionError("unreachable: the last phase always matches")

    def _interpolate(self, start_name: str, end_name: str, fraction: float) -> list[float]:
        starts, ends = getattr(self, start_name), getattr(self, end_name)
        return [self._anneal(start, end, fraction) for start, end in zip(starts, ends)]

    def get_lr(self) -> list[float]:
        (_, start_lrs, end_lrs, _, _), fraction = self._position()
        return self._interpolate(start_lrs, end_lrs, fraction)

    def step(self) -> None:
        """Advance one batch: set every group's ``lr`` (and momentum, with ``cycle_momentum``)."""
        super().step()
        if self.cycle_momentum:
            (_, _, _, start_momenta, end_momenta), fraction = self._position()
            for group, momentum in zip(self.optimizer.param_groups,
                                       self._interpolate(start_momenta, end_momenta, fraction)):
                if self.use_beta1:
                    group["betas"] = (momentum, *group["betas"][1:])
                else:
                    group["momentum"] = momentum


def _per_group(owner: str, name: str, value, n_groups: int) -> list[float]:
    """``value`` as a list with one float per parameter group (a single number is repeated)."""
    if isinstance(value, (list, tuple)):
        if len(value) != n_groups:
            raise ValueError(f"{owner}: expected {n_groups} values of {name} (one per parameter group), "
                             f"got {len(value)}")
        return [float(v) for v in value]
    return [float(value)] * n_groups


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
        self.min_lrs = _per_group("ReduceLROnPlateau", "min_lr", min_lr, len(groups))
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
