"""`Module`: the base class of layers and models.

A module holds parameters (learned Tensors), buffers (arrays it keeps but
does not learn, e.g. batch-norm running statistics) and sub-modules, all
registered simply by assigning them as attributes::

    class TwoLayer(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc1 = nn.Linear(4, 8)       # a sub-module
            self.fc2 = nn.Linear(8, 2)

        def forward(self, x):
            return self.fc2(F.relu(self.fc1(x)))

Names follow PyTorch: ``parameters()``, ``named_parameters()``, ``train()``,
``eval()``, ``state_dict()``, ``load_state_dict()``, ``to(backend)``.
"""
from __future__ import annotations

from collections import OrderedDict

from .. import backends
from .parameter import Parameter


class Module:
    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "training", True)

    # -- registration ---------------------------------------------------------
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise RuntimeError(f"{type(self).__name__}: call super().__init__() before assigning attributes")
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, (Parameter, Module)):
            self.__dict__.pop(name, None)          # a plain attribute of that name would hide it
            (self._parameters if isinstance(value, Parameter) else self._modules)[name] = value
        else:
            object.__setattr__(self, name, value)

    def __getattr__(self, name):
        # Called only when normal lookup fails: look in the registries.
        for registry in ("_parameters", "_buffers", "_modules"):
            table = self.__dict__.get(registry)
            if table is not None and name in table:
                return table[name]
        raise AttributeError(f"{type(self).__name__} has no attribute {name!r}")

    def register_buffer(self, name: str, array) -> None:
        """Keep ``array`` (numpy/cupy) in the state dict and move it with .to(), without learning it."""
        self._buffers[name] = array

    def set_buffer(self, name: str, array) -> None:
        if name not in self._buffers:
            raise KeyError(f"{type(self).__name__}: no buffer named {name!r}")
        self._buffers[name] = array

    # -- traversal ------------------------------------------------------------
    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, module in self._modules.items():
            yield from module.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def children(self):
        return iter(self._modules.values())

    def named_children(self):
        return iter(self._modules.items())

    def named_parameters(self, prefix: str = "", remove_duplicate: bool = True):
        """(name, parameter) pairs; a parameter shared by several layers is listed once, under its first
        name, unless ``remove_duplicate`` is False (as in PyTorch; the state dict keeps every name)."""
        seen = set()
        for module_name, module in self.named_modules(prefix):
            for name, p in module._parameters.items():
                if p is not None and (not remove_duplicate or id(p) not in seen):
                    seen.add(id(p))
                    yield (f"{module_name}.{name}" if module_name else name), p

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        for module_name, module in self.named_modules():
            for name, b in module._buffers.items():
                yield (f"{module_name}.{name}" if module_name else name), b

    def num_parameters(self) -> int:
        return sum(p.size for p in self.parameters())

    # -- modes ------------------------------------------------------------------
    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", mode)
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self) -> None:
        for p in self.parameters():
            p.grad = None

    # -- calling ------------------------------------------------------------------
    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} must implement forward()")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # -- state ------------------------------------------------------------------
    def state_dict(self) -> "OrderedDict[str, object]":
        """Name -> array (the module's backend) for every parameter and buffer."""
        state = OrderedDict((name, p.data) for name, p in self.named_parameters(remove_duplicate=False))
        state.update(self.named_buffers())
        return state

    def load_state_dict(self, state_dict, strict: bool = True):
        """Copy arrays from ``state_dict`` into this module's parameters and buffers.

        With ``strict`` (default) the keys must match exactly; every problem is listed in one error:
        missing keys, unexpected keys and mismatched shapes. Returns (missing, unexpected).
        """
        own = self.state_dict()
        missing = [k for k in own if k not in state_dict]
        unexpected = [k for k in state_dict if k not in own]
        mismatched = [
            f"{k}: checkpoint {tuple(state_dict[k].shape)} vs model {tuple(own[k].shape)}"
            for k in own if k in state_dict and tuple(state_dict[k].shape) != tuple(own[k].shape)
        ]
        problems = []
        if strict and missing:
            problems.append("missing keys: " + ", ".join(missing))
        if strict and unexpected:
            problems.append("unexpected keys: " + ", ".join(unexpected))
        if mismatched:
            problems.append("shape mismatch: " + "; ".join(mismatched))
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + " | ".join(problems))
        params = dict(self.named_parameters(remove_duplicate=False))
        for module_name, module in self.named_modules():
            for name in list(module._buffers):
                key = f"{module_name}.{name}" if module_name else name
                if key in state_dict:
                    old = module._buffers[name]
                    module._buffers[name] = backends.to_backend(state_dict[key], backends.backend_of(old)).astype(old.dtype).copy()
        for key, p in params.items():
            if key in state_dict:
                p.data = backends.to_backend(state_dict[key], backends.backend_of(p.data)).astype(p.dtype).copy()
        return missing, unexpected

    def to(self, backend: str) -> "Module":
        """Move every parameter and buffer to ``backend`` ('numpy' or 'cupy'), in place."""
        for p in self.parameters():
            p.data = backends.to_backend(p.data, backend)
            if p.grad is not None:
                p.grad = backends.to_backend(p.grad, backend)
        for module in self.modules():
            for name, b in list(module._buffers.items()):
                module._buffers[name] = backends.to_backend(b, backend)
        return self

    # -- printing ------------------------------------------------------------------
    def extra_repr(self) -> str:
        return ""

    def __repr__(self) -> str:
        if not self._modules:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = [f"{type(self).__name__}("]
        for name, module in self._modules.items():
            body = repr(module).replace("\n", "\n  ")
            lines.append(f"  ({name}): {body}")
        lines.append(")")
        return "\n".join(lines)
