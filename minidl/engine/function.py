"""`Function`: one differentiable op, its forward and its backward side by side.

A subclass implements two methods on *plain arrays* (numpy or cupy):

    forward(*inputs)        -> output array (or a tuple of arrays)
    backward(*grad_outputs) -> one gradient array per input (None where the
                               input needs none)

Calling the function on Tensors runs ``forward`` and, when gradients are on and
some input requires them, records the function as the outputs' ``creator`` so
that :meth:`Tensor.backward` can walk the graph back. Anything backward needs
(inputs, masks, indices) is kept on ``self`` by ``forward``. ``self.requires_grad``
is set before ``forward`` runs: when it is False (``no_grad()``, or no input
requires grad) no backward will follow, and forward may skip that bookkeeping.
"""
from __future__ import annotations

import contextlib
import weakref

import numpy as np

from .. import backends as _backend
from .tensor import Tensor, as_tensor

_grad_enabled = True


def is_grad_enabled() -> bool:
    return _grad_enabled


@contextlib.contextmanager
def no_grad():
    """Inside ``with minidl.no_grad():`` ops build no graph (inference, weight updates)."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


class Function:
    """Base class of every differentiable op (see module docstring)."""

    requires_grad = True        # until __call__ says otherwise: forward called directly keeps everything

    def __call__(self, *inputs):
        tensors = [x if isinstance(x, Tensor) else as_tensor(x) for x in inputs]
        self._check_same_backend(tensors)
        requires_grad = _grad_enabled and any(t.requires_grad for t in tensors)
        self.requires_grad = requires_grad      # forward may skip what only backward needs when False
        outputs = self.forward(*[t.data for t in tensors])
        single = not isinstance(outputs, tuple)
        outputs = (outputs,) if single else outputs
        outputs = tuple(np.asarray(y) if isinstance(y, np.generic) else y for y in outputs)  # 0-d results
        results = tuple(Tensor(y, requires_grad=requires_grad) for y in outputs)
        if requires_grad:
            self.inputs = tuple(tensors)
            self.needs_grad = tuple(t.requires_grad for t in tensors)
            self.generation = max(t.generation for t in tensors)
            self.n_outputs = len(results)
            self._outputs = [weakref.ref(y) for y in results]
            for i, y in enumerate(results):
                y.creator = self
                y.output_index = i
                y.generation = self.generation + 1
        return results[0] if single else results

    # -- to implement -------------------------------------------------------
    def forward(self, *xs):
        raise NotImplementedError

    def backward(self, *gys):
        raise NotImplementedError

    # -- graph bookkeeping --------------------------------------------------
    def outputs_alive(self) -> list:
        if getattr(self, "_released", False):
            raise RuntimeError(
                f"{self.name}: trying to run backward through this part of the graph a second time, "
                "but its saved arrays were freed; call .backward(retain_graph=True) the first time"
            )
        return [ref() for ref in self._outputs]

    def release(self) -> None:
        """Drop inputs and saved arrays once backward has used them (frees memory)."""
        self.__dict__.clear()
        self._released = True
        self.inputs = ()

    # -- helpers ------------------------------------------------------------
    @property
    def name(self) -> str:
        return type(self).__name__

    def _check_same_backend(self, tensors) -> None:
        if len(tensors) < 2:
            return
        kinds = {_backend.backend_of(t.data) for t in tensors}
        if len(kinds) > 1:
            where = ", ".join(f"input {i}: {_backend.backend_of(t.data)} {tuple(t.shape)}" for i, t in enumerate(tensors))
            raise TypeError(
                f"{self.name}: inputs live on different backends ({where}); "
                "move them to one backend first with tensor.to('numpy') or tensor.to('cupy')"
            )

    def __repr__(self) -> str:
        return f"<{self.name}>"
