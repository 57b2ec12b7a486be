"""minidl.onnx: export a model to ONNX, the format onnxruntime, TensorRT, OpenVINO and PyTorch read.

    minidl.onnx.export(model, x, "nin.onnx")             # input (N, C, H, W) float -> "logits" (N, K)
    minidl.onnx.export_classifier(model, "model.onnx")   # uint8 images (N, H, W, C) -> logits, probabilities

:func:`export` traces one eval-mode forward pass of ``model`` on ``example_input`` through the autograd
graph (:mod:`minidl.onnx.graph`) and writes each recorded op as standard ONNX operators
(:mod:`minidl.onnx.converters`), with the batch dimension dynamic ("N"). An op without an ONNX form
raises NotImplementedError naming it. :func:`export_classifier` does the same for a model read by
:func:`minidl.models.load_model`, with the conversion to float and its fitted preprocessing in front
(:mod:`minidl.onnx.preprocess`), a softmax behind, and the class names in the file's metadata
(``minidl.classes``, a JSON list), so ``examples/predict.py --model model.onnx`` needs nothing else.

Needs the optional packages onnx (and onnxruntime to run the file): ``pip install -e '.[onnx]'``.
"""
from __future__ import annotations

import json
import os

import numpy as np

from .. import backends
from ..engine.tensor import Tensor
from ..serialization import atomic_write
from .converters import CONVERTERS, convert
from .graph import GraphBuilder, trace
from .preprocess import add_preprocess

DEFAULT_OPSET = 17
#: the opsets whose semantics the converters follow
OPSETS = range(13, 22)

__all__ = ["export", "export_classifier", "require", "CONVERTERS", "DEFAULT_OPSET"]


def require():
    """Import and return the onnx package, or raise ImportError saying how to install it."""
    try:
        import onnx
    except ImportError:
        raise ImportError("ONNX export needs the onnx package: pip install -e '.[onnx]'") from None
    return onnx


def _model_arrays(model) -> dict:
    """id(array) -> state_dict name, for every parameter and buffer (names of the initializers)."""
    named = {id(p.data): name for name, p in model.named_parameters(remove_duplicate=False)}
    named.update({id(b): name for name, b in model.named_buffers()})
    return named


def _build(model, example_input, opset: int, graph: GraphBuilder | None = None, input_name: str = "input"):
    """(graph, output name, traced output Tensor) for one traced forward pass, the input named ``input_name``."""
    if opset not in OPSETS:
        raise ValueError(f"minidl.onnx.export: opset must be in {OPSETS.start}..{OPSETS.stop - 1}, got {opset}")
    example = example_input.data if isinstance(example_input, Tensor) else example_input
    if example.ndim < 1 or example.shape[0] < 1:
        raise ValueError(f"minidl.onnx.export: example_input needs a batch dimension, got shape {tuple(example.shape)}")
    x, y, functions = trace(model, example)
    graph = graph or GraphBuilder(opset, _model_arrays(model))
    graph.bind(x, input_name)
    for fn in functions:
        inputs = [graph.name_of(t) for t in fn.inputs]
        outputs = [ref() for ref in fn._outputs]
        names = [graph.unique(f"{fn.name.lower()}_out") for _ in outputs]
        convert(fn, graph, inputs, names[0], int(example.shape[0]))
        for tensor, name in zip(outputs, names):
            if tensor is not None:
                graph.bind(tensor, name)
    return graph, graph.name_of(y), y


def _tensor_info(helper, name, dtype, shape):
    from onnx import helper as h
    elem = h.np_dtype_to_tensor_dtype(np.dtype(dtype))
    return helper.make_tensor_value_info(name, elem, ["N", *shape[1:]])


def _write(graph, inputs, outputs, path, opset, doc: str, metadata: dict | None = None):
    onnx = require()
    helper = onnx.helper
    body = helper.make_graph(graph.nodes, "minidl", inputs, outputs, initializer=graph.initializers)
    opsets = [helper.make_opsetid("", opset)]
    model = helper.make_model(body, opset_imports=opsets, producer_name="minidl", doc_string=doc,
                              ir_version=helper.find_min_ir_version_for(opsets))
    for key, value in (metadata or {}).items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.checker.check_model(model)
    atomic_write(path, lambda tmp: onnx.save(model, tmp))
    return model


def export(model, example_input, path, opset: int = DEFAULT_OPSET):
    """Write ``model`` as ONNX: input "input" (N, ...) like ``example_input``, output "logits"; returns the ModelProto.

    ``example_input``: an array or Tensor (N, C, H, W) in the model's dtype; only its shape and dtype
    matter (and that the forward pass runs on it). The batch dimension is dynamic.
    """
    helper = require().helper
    graph, out, y = _build(model, example_input, opset)
    graph.node("Identity", [out], ["logits"])
    example = example_input.data if isinstance(example_input, Tensor) else example_input
    inputs = [_tensor_info(helper, "input", example.dtype, example.shape)]
    outputs = [_tensor_info(helper, "logits", y.dtype, y.shape)]
    return _write(graph, inputs, outputs, path, opset, f"{type(model).__name__} exported by minidl")


def _gap_input(y):
    """The maps (N, K, h, w) whose global average is the traced output y (N, K), or None when y is not one."""
    from ..functional.pooling import GlobalAvgPool2d
    return y.creator.inputs[0] if isinstance(y.creator, GlobalAvgPool2d) else None


def export_classifier(model, path, opset: int = DEFAULT_OPSET):
    """Write a model from :func:`minidl.models.load_model` (classes, image_size, preprocess set) as ONNX.

    Input "images": uint8 (N, H, W, C); outputs "logits" and "probabilities" (N, K) and, for a model
    whose scores are the global average of its last maps (NIN's GAP head), "class_maps" (N, K, h, w):
    the maps before the average, which ``predict.py --show`` draws. Metadata ``minidl.classes`` (JSON
    list of names) and ``minidl.image_size`` (JSON [H, W]).
    """
    onnx = require()
    helper = onnx.helper
    if model.classes is None or model.image_size is None:
        raise ValueError("minidl.onnx.export_classifier: the model needs classes and image_size "
                         "(a model from minidl.models.load_model has them)")
    channels = model.config["in_channels"]
    image_shape = [*model.image_size, channels]
    first = next(model.parameters())
    dtype = first.dtype
    graph = GraphBuilder(opset, _model_arrays(model))
    as_float = graph.node("Cast", ["images"], to=onnx.TensorProto.FLOAT)
    scaled = graph.node("Div", [as_float, graph.constant(255.0, np.float32, "255")], hint="in_0_1")
    prepared = add_preprocess(model.preprocess, graph, scaled, image_shape)
    nchw = graph.node("Transpose", [prepared], perm=[0, 3, 1, 2], hint="input")
    example = backends.array_module(backends.backend_of(first.data)).zeros((1, channels, *model.image_size), dtype)
    graph, out, y = _build(model, example, opset, graph, input_name=nchw)
    graph.node("Identity", [out], ["logits"])
    graph.node("Softmax", ["logits"], ["probabilities"], axis=1)
    inputs = [_tensor_info(helper, "images", np.uint8, [1, *image_shape])]
    outputs = [_tensor_info(helper, "logits", np.float32, y.shape),
               _tensor_info(helper, "probabilities", np.float32, y.shape)]
    maps = _gap_input(y)
    if maps is not None:
        graph.node("Identity", [graph.name_of(maps)], ["class_maps"])
        outputs.append(_tensor_info(helper, "class_maps", np.float32, maps.shape))
    metadata = {"minidl.classes": json.dumps(list(model.classes)), "minidl.image_size": json.dumps(list(model.image_size))}
    return _write(graph, inputs, outputs, os.fspath(path), opset,
                  f"{type(model).__name__} classifier exported by minidl", metadata)
