"""`Sequential`: modules applied one after another; `Flatten`."""
from __future__ import annotations

import operator

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

    def __getitem__(self, index):
        """``seq[i]``: the i-th module (i < 0 counts from the end); ``seq[a:b]``: a new Sequential of those
        same modules (shared, not copied), under their original names, so its state_dict keys match seq's."""
        items = list(self._modules.items())
        if isinstance(index, slice):
            part = Sequential()
            for name, module in items[index]:
                setattr(part, name, module)
            part.training = self.training
            return part
        try:
            i = operator.index(index)
        except TypeError:
            raise TypeError(f"Sequential: index must be an int or a slice, got {index!r}") from None
        if not -len(items) <= i < len(items):
            raise IndexError(f"Sequential: index {i} is out of range for {len(items)} modules")
        return items[i][1]

    def __iter__(self):
        return iter(self._modules.values())

    def forward(self, x):
        for module in self._modules.values():
            x = module(x)
        return x


class Flatten(Module):
    def forward(self, x):
        return F.flatten(x, 1)
