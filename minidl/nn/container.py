"""`Sequential`: modules applied one after another; `Flatten`."""
from __future__ import annotations

from .. import functional as F
from .module import Module


class Sequential(Module):
    def __init__(self, *modules):
        super().__init__()
        for i, module in enumerate(modules):
            if not isinstance(module, Module):
                raise TypeError(f"Sequential: item {i} is a {type(module).__name__}, not a Module")
            setattr(self, str(i), module)

    def __len__(self) -> int:
        return len(self._modules)

    def __getitem__(self, index: int) -> Module:
        return list(self._modules.values())[index]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class Flatten(Module):
    def forward(self, x):
        return F.flatten(x, 1)
