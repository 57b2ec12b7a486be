"""Tracing a forward pass into an ONNX graph.

minidl records every op of a forward pass as a :class:`~minidl.engine.Function` whose outputs know it
as their ``creator`` (the autograd graph). :func:`trace` runs the model once in eval mode with an input
that requires grad, so every op downstream of the input is recorded, then walks the creators back from
the output and lists the Functions in the order they ran (a topological order). :class:`GraphBuilder`
turns that list into ONNX nodes, one converter per Function class (:mod:`minidl.onnx.converters`).

The graph is written in the tensors' *logical* layout, NCHW, the one minidl's API shows: that
activations sit channels-last in memory (:mod:`minidl.kernels.layout`) is invisible to the Functions'
semantics, so no transposes appear. Dropout creates no Function in eval mode, so it leaves no node.
Leaves of the recorded graph become initializers: parameters and the batch-norm statistics under
their ``state_dict`` names, any other constant under a generated name.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..engine.function import enable_grad
from ..engine.tensor import Tensor


def trace(model, example_input):
    """(input Tensor, output Tensor, Functions in execution order) of one eval-mode forward pass."""
    data = example_input.data if isinstance(example_input, Tensor) else example_input
    x = Tensor(data.copy(), requires_grad=True)
    was_training = model.training
    model.eval()
    try:
        with enable_grad():
            y = model(x)
    finally:
        model.train(was_training)
    if not isinstance(y, Tensor) or y.creator is None:
        raise ValueError("minidl.onnx.export: the model's output does not depend on its input through any op")
    order, seen = [], set()
    stack = [(y.creator, False)]
    while stack:                                   # depth-first, a Function after all of its inputs' creators
        fn, expanded = stack.pop()
        if expanded:
            order.append(fn)
            continue
        if id(fn) in seen:
            continue
        seen.add(id(fn))
        stack.append((fn, True))
        for t in reversed(fn.inputs):
            if t.creator is not None and id(t.creator) not in seen:
                stack.append((t.creator, False))
    return x, y, order


class GraphBuilder:
    """Collects ONNX nodes and initializers; names tensors by identity."""

    def __init__(self, opset: int, known_arrays: dict):
        from onnx import helper, numpy_helper
        self.helper, self.numpy_helper = helper, numpy_helper
        self.opset = opset
        self.nodes, self.initializers = [], []
        self._names = {}                   # id(Tensor or array) -> ONNX name
        self._taken = set()
        self._known = known_arrays         # id(array) -> state_dict name
        self._keep = []                    # keeps named objects alive, so ids are not reused

    def unique(self, hint: str) -> str:
        name, n = hint, 1
        while name in self._taken:
            name, n = f"{hint}_{n}", n + 1
        self._taken.add(name)
        return name

    def bind(self, obj, name: str) -> str:
        self._names[id(obj)] = name
        self._keep.append(obj)
        return name

    def name_of(self, tensor: Tensor) -> str:
        """The ONNX name of a traced tensor; a leaf seen for the first time becomes an initializer."""
        if id(tensor) in self._names:
            return self._names[id(tensor)]
        if tensor.creator is not None:
            raise RuntimeError("minidl.onnx: a tensor was used before the op that makes it")
        return self.bind(tensor, self.array(tensor.data, "const"))

    def array(self, array, hint: str = "const") -> str:
        """An initializer holding ``array`` (a parameter or buffer keeps its state_dict name)."""
        if id(array) in self._names:
            return self._names[id(array)]
        host = np.ascontiguousarray(backends.to_numpy(array))
        name = self.unique(self._known.get(id(array), hint))
        self.initializers.append(self.numpy_helper.from_array(host, name))
        return self.bind(array, name)

    def constant(self, values, dtype, hint: str) -> str:
        """A fresh initializer (shapes, axes, scalars) of ``values`` in ``dtype``."""
        host = np.asarray(values, dtype=dtype)
        name = self.unique(hint)
        self.initializers.append(self.numpy_helper.from_array(host, name))
        return name

    def node(self, op_type: str, inputs, outputs=None, hint: str | None = None, **attributes) -> str:
        """Add a node; returns its (first) output name (a fresh one unless ``outputs`` are given)."""
        outputs = outputs or [self.unique(hint or op_type.lower())]
        self.nodes.append(self.helper.make_node(op_type, list(inputs), list(outputs),
                                                name=self.unique(f"{op_type}_{len(self.nodes)}"), **attributes))
        return outputs[0]

    def reduce(self, op_type: str, x: str, axes, keepdims: int = 1, hint: str | None = None) -> str:
        """ReduceSum/ReduceMean over ``axes``: an input from opset 18 on (ReduceSum: 13), an attribute before."""
        axes_as_input = self.opset >= (13 if op_type == "ReduceSum" else 18)
        if axes_as_input:
            return self.node(op_type, [x, self.constant(list(axes), np.int64, "axes")], hint=hint, keepdims=keepdims)
        return self.node(op_type, [x], hint=hint, axes=list(axes), keepdims=keepdims)
