"""`Optimizer`: the base class that holds parameter groups and per-parameter state.

An optimizer turns gradients into parameter changes. Every rule in this
package has the shape

    state_t = f(state_{t-1}, g_t)        (e.g. a running average of gradients)
    p_t     = p_{t-1} - lr * u(state_t)  (the update, written in place into p.data)

so the base class only has to know *which* parameters to visit, with *which*
hyper-parameters, and where each parameter's state lives; a subclass supplies
the rule in one method, ``_update(param, grad, state, group)``.

Parameters come as a list of tensors, or as *parameter groups*: dicts with
their own hyper-parameters, the missing ones taken from the optimizer's
defaults. E.g. biases learning twice as fast as weights, as in the Caffe setup
of the Network In Network paper::

    SGD([{"params": weights}, {"params": biases, "lr": 0.1}], lr=0.05, momentum=0.9)

``optimizer.state[p]`` is the dict of that parameter's buffers (momentum,
running averages, step count), created on the first ``step()`` that sees a
gradient for ``p``; as in PyTorch it is keyed by the parameter itself (Tensors
hash by identity). Buffers live on the parameter's backend (NumPy or CuPy), and
``step()`` never copies anything to the host, so it can run asynchronously on a GPU.

``state_dict()`` names parameters by their position counted across all groups
(0, 1, 2, ... in the order they were given) and holds NumPy arrays and plain
Python numbers only, so a checkpoint saved on a GPU loads on a CPU and back.
"""
from __future__ import annotations

import copy
from collections import defaultdict

import numpy as np

from .. import backends
from ..engine import Tensor


class Optimizer:
    """Base class of all optimizers.

    ``params``: an iterable of Tensors, or of dicts (parameter groups) with a
    ``"params"`` entry and optional hyper-parameters overriding ``defaults``.
    """

    def __init__(self, params, defaults: dict):
        self.defaults = dict(defaults)
        self.param_groups: list[dict] = []
        self.state: dict = defaultdict(dict)          # parameter (Tensor) -> its buffers
        if isinstance(params, (Tensor, dict)):
            raise TypeError(f"{self._name}: params must be an iterable of Tensors or of dicts, "
                            f"got a single {type(params).__name__}; wrap it in a list")
        self._check_ordered(params, "params")
        params = list(params)
        if not params:
            raise ValueError(f"{self._name}: got an empty parameter list")
        n_dicts = sum(isinstance(item, dict) for item in params)
        if 0 < n_dicts < len(params):
            raise TypeError(f"{self._name}: params mixes {n_dicts} parameter groups (dicts) with "
                            f"{len(params) - n_dicts} other items; give all Tensors or all dicts")
        groups = params if n_dicts else [{"params": params}]
        for group in groups:
            self.add_param_group(group)

    @property
    def _name(self) -> str:
        return type(self).__name__

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with its own hyper-parameters (missing ones from ``defaults``)."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{self._name}: a parameter group must be a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise ValueError(f"{self._name}: a parameter group needs a 'params' entry, got keys {sorted(param_group)}")
        group = dict(param_group)
        params = group["params"]
        self._check_ordered(params, "a parameter group's 'params'")
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self._check_hyperparameters(group)

        already_here = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor):
                raise TypeError(f"{self._name}: can only optimize Tensors, got {type(p).__name__}")
            if p.data.dtype.kind != "f":
                raise TypeError(f"{self._name}: can only optimize floating-point tensors, "
                                f"got one of dtype {p.data.dtype} and shape {tuple(p.shape)}")
            if id(p) in already_here:
                raise ValueError(f"{self._name}: a parameter of shape {tuple(p.shape)} appears in more than "
                                 f"one parameter group (or twice in one)")
            already_here.add(id(p))
        self.param_groups.append(group)

    def _check_ordered(self, params, what: str) -> None:
        """Sets have no stable order, and the state_dict names parameters by position: refuse them."""
        if isinstance(params, (set, frozenset)):
            raise TypeError(f"{self._name}: {what} must be an ordered iterable (list, tuple, generator), "
                            f"got a set, whose order can change from run to run")

    def _check_hyperparameters(self, group: dict) -> None:
        """Raise ValueError for a hyper-parameter out of range; subclasses extend it."""
        lr = group.get("lr")
        if lr is not None and not lr >= 0:
            raise ValueError(f"{self._name}: lr must be >= 0, got {lr}")

    # -- the update ------------------------------------------------------------
    def zero_grad(self) -> None:
        """Forget the gradients (``p.grad = None``), so the next backward pass starts from nothing."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self, closure=None):
        """Update every parameter that has a gradient; parameters whose ``grad`` is None are skipped.

        ``closure``, if given, re-evaluates the model and returns the loss (PyTorch's convention);
        its value is returned.
        """
        loss = closure() if closure is not None else None
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    self._update(p.data, p.grad, self.state[p], group)
        return loss

    def _update(self, param, grad, state: dict, group: dict) -> None:
        """The rule: change the array ``param`` in place from the array ``grad``.

        ``state`` is this parameter's dict of buffers (empty on its first step), ``group``
        its hyper-parameters. All arrays are on the parameter's backend; nothing may be
        copied to the host here.
        """
        raise NotImplementedError(f"{self._name} does not implement _update")

    # -- saving and loading ----------------------------------------------------
    def _indexed_params(self):
        """(position, parameter) for every parameter, counted across groups in order."""
        return enumerate(p for group in self.param_groups for p in group["params"])

    def state_dict(self) -> dict:
        """A snapshot of the optimizer as NumPy arrays (copies) and plain Python values.

        ``{"state": {position: {name: array or number}}, "param_groups": [{hyper-parameters...,
        "params": [positions]}]}``; positions count parameters across all groups.
        """
        state = {}
        for index, p in self._indexed_params():
            if self.state.get(p):
                state[index] = {name: _host_copy(value) for name, value in self.state[p].items()}
        groups, start = [], 0
        for group in self.param_groups:
            count = len(group["params"])
            hyper = {key: copy.deepcopy(value) for key, value in group.items() if key != "params"}
            groups.append({**hyper, "params": list(range(start, start + count))})
            start += count
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore hyper-parameters and buffers saved by :meth:`state_dict`.

        The optimizer must have been built over the same parameters (same groups, same counts
        and shapes). Arrays are copied onto each parameter's backend, in its dtype.
        """
        name = f"{self._name}.load_state_dict"
        if not isinstance(state_dict, dict) or set(state_dict) != {"state", "param_groups"}:
            keys = sorted(state_dict) if isinstance(state_dict, dict) else type(state_dict).__name__
            raise ValueError(f"{name}: expected a dict with keys 'state' and 'param_groups', got {keys}")
        saved_groups = state_dict["param_groups"]
        if len(saved_groups) != len(self.param_groups):
            raise ValueError(f"{name}: the state has {len(saved_groups)} parameter groups, "
                             f"this optimizer {len(self.param_groups)}")
        for k, (saved, group) in enumerate(zip(saved_groups, self.param_groups)):
            if len(saved["params"]) != len(group["params"]):
                raise ValueError(f"{name}: parameter group {k} has {len(saved['params'])} parameters in the "
                                 f"state, {len(group['params'])} in this optimizer")

        params = dict(self._indexed_params())
        new_state = defaultdict(dict)
        for index, buffers in state_dict["state"].items():
            index = int(index)
            if index not in params:
                raise ValueError(f"{name}: the state refers to parameter {index}, "
                                 f"but this optimizer has {len(params)} parameters")
            p = params[index]
            new_state[p] = {key: self._load_value(p, index, key, value, name) for key, value in buffers.items()}

        # Everything checked: now change the optimizer.
        self.state = new_state
        for saved, group in zip(saved_groups, self.param_groups):
            for key, value in saved.items():
                if key != "params":
                    group[key] = copy.deepcopy(value)

    @staticmethod
    def _load_value(p: Tensor, index: int, key: str, value, name: str):
        """A copy of one saved buffer, on ``p``'s backend and (for float buffers) in ``p``'s dtype."""
        if not _is_array(value):
            return copy.deepcopy(value)
        if value.ndim > 0 and tuple(value.shape) != tuple(p.shape):
            raise ValueError(f"{name}: state {key!r} of parameter {index} has shape {tuple(value.shape)}, "
                             f"but the parameter has shape {tuple(p.shape)}")
        moved = backends.to_backend(value, backends.backend_of(p.data))
        dtype = p.data.dtype if moved.dtype.kind == "f" else moved.dtype
        return moved.astype(dtype, copy=True)         # always a fresh array: never aliases the checkpoint

    def __repr__(self) -> str:
        lines = [f"{self._name} ("]
        for k, group in enumerate(self.param_groups):
            hyper = ", ".join(f"{key}={value}" for key, value in group.items() if key != "params")
            lines.append(f"  group {k}: {len(group['params'])} tensors, {hyper}")
        return "\n".join(lines + [")"])


def _is_array(value) -> bool:
    """True for a NumPy or CuPy array (not for Python numbers)."""
    return hasattr(value, "shape") and hasattr(value, "dtype")


def _host_copy(value):
    """A NumPy copy of an array (from either backend), a deep copy of anything else."""
    if not _is_array(value):
        return copy.deepcopy(value)
    if backends.is_cupy_array(value):
        return backends.to_numpy(value)              # the transfer to the host is already a copy
    return np.array(value, copy=True)
