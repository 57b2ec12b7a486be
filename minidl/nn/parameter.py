"""`Parameter`: a Tensor that a Module learns (requires_grad is on)."""
from __future__ import annotations

from ..engine.tensor import Tensor


class Parameter(Tensor):
    def __init__(self, data, requires_grad: bool = True):
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self) -> str:
        return "Parameter containing:\n" + super().__repr__()
