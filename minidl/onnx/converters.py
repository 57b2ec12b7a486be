"""Each minidl Function's ONNX form: a registry from Function class to converter.

A converter gets the traced Function (its attributes hold what ``forward`` used: strides, paddings,
batch-norm statistics), the :class:`~minidl.onnx.graph.GraphBuilder`, the ONNX names of its inputs
and the name its output must have, and adds the equivalent standard ONNX nodes. The semantics match
minidl's logical NCHW view:

==================  ==========================================================================
Conv2d              Conv (pads [ph, pw, ph, pw], no dilation), + Relu if a ReLU is fused
ReLU                Relu
MaxPool2d           MaxPool (padded cells never win, as in ONNX), floor output size
AvgPool2d           AveragePool, count_include_pad=1 (padded zeros counted, as minidl does)
GlobalAvgPool2d     GlobalAveragePool (N, C, 1, 1), then Flatten -> (N, C)
BatchNorm2d         BatchNormalization with the running statistics (eval mode only), + Relu if fused
Linear              Gemm, transB=1 (y = x W^T + b)
Add, Sub, Mul, Div  the same, with NumPy's (= ONNX's multidirectional) broadcasting
Neg, MatMul         Neg, MatMul
Reshape             Reshape, the batch size written as 0 ("copy the input's"), so it stays dynamic
Transpose           Transpose (perm)
Softmax             Softmax (axis)
==================  ==========================================================================

A Function without a converter makes :func:`convert` raise, naming it.
"""
from __future__ import annotations

import numpy as np

from ..functional.activation import ReLU
from ..functional.arithmetic import Add, Div, MatMul, Mul, Neg, Sub
from ..functional.conv import Conv2d
from ..functional.linear import Linear
from ..functional.loss import Softmax
from ..functional.normalization import BatchNorm2d
from ..functional.pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d
from ..functional.shape import Reshape, Transpose

CONVERTERS = {}


def converts(function_class):
    """Register the decorated function as the ONNX converter of ``function_class``."""
    def register(converter):
        CONVERTERS[function_class] = converter
        return converter
    return register


def convert(fn, graph, inputs: list, output: str, batch_size: int) -> None:
    converter = CONVERTERS.get(type(fn))
    if converter is None:
        known = ", ".join(sorted(cls.__name__ for cls in CONVERTERS))
        raise NotImplementedError(f"minidl.onnx.export: the op {type(fn).__module__}.{fn.name} has no ONNX "
                                  f"converter (ops with one: {known})")
    converter(fn, graph, inputs, output, batch_size)


@converts(Conv2d)
def _conv(fn, graph, inputs, output, batch_size):
    _, _, kh, kw = fn.inputs[1].shape
    (sh, sw), (ph, pw) = fn.stride, fn.padding
    fused_relu = fn.activation == "relu"
    conv_out = graph.node("Conv", inputs, None if fused_relu else [output], kernel_shape=[kh, kw],
                          strides=[sh, sw], pads=[ph, pw, ph, pw], dilations=[1, 1], group=1)
    if fused_relu:                                   # conv2d(..., activation="relu"): a Relu node after it
        graph.node("Relu", [conv_out], [output])


@converts(ReLU)
def _relu(fn, graph, inputs, output, batch_size):
    graph.node("Relu", inputs, [output])


def _pool_attributes(fn) -> dict:
    kh, kw, sh, sw, ph, pw = fn.args
    return dict(kernel_shape=[kh, kw], strides=[sh, sw], pads=[ph, pw, ph, pw], ceil_mode=0)


@converts(MaxPool2d)
def _max_pool(fn, graph, inputs, output, batch_size):
    graph.node("MaxPool", inputs, [output], **_pool_attributes(fn))


@converts(AvgPool2d)
def _avg_pool(fn, graph, inputs, output, batch_size):
    graph.node("AveragePool", inputs, [output], count_include_pad=1, **_pool_attributes(fn))


@converts(GlobalAvgPool2d)
def _global_avg_pool(fn, graph, inputs, output, batch_size):
    pooled = graph.node("GlobalAveragePool", inputs, hint="pooled")        # (N, C, 1, 1)
    graph.node("Flatten", [pooled], [output], axis=1)


@converts(BatchNorm2d)
def _batch_norm(fn, graph, inputs, output, batch_size):
    if fn.training:
        raise ValueError("minidl.onnx.export: BatchNorm2d was traced in training mode; export traces eval mode")
    fused_relu = fn.activation == "relu"
    x, weight, bias = inputs
    dtype = fn.inputs[0].dtype
    mean = graph.array(fn.running_mean, "running_mean") if fn.running_mean.dtype == dtype else \
        graph.constant(np.asarray(fn.running_mean).astype(dtype), dtype, "running_mean")
    var = graph.array(fn.running_var, "running_var") if fn.running_var.dtype == dtype else \
        graph.constant(np.asarray(fn.running_var).astype(dtype), dtype, "running_var")
    normalized = graph.node("BatchNormalization", [x, weight, bias, mean, var], None if fused_relu else [output],
                            epsilon=float(fn.eps))
    if fused_relu:                                   # batch_norm2d(..., activation="relu"): a Relu node after it
        graph.node("Relu", [normalized], [output])


@converts(Linear)
def _linear(fn, graph, inputs, output, batch_size):
    graph.node("Gemm", inputs, [output], transB=1)


def _elementwise(op_type):
    def converter(fn, graph, inputs, output, batch_size):
        graph.node(op_type, inputs, [output])
    return converter


for _cls, _op in ((Add, "Add"), (Sub, "Sub"), (Mul, "Mul"), (Div, "Div"), (Neg, "Neg"), (MatMul, "MatMul")):
    converts(_cls)(_elementwise(_op))


@converts(Reshape)
def _reshape(fn, graph, inputs, output, batch_size):
    target = list(fn.shape)
    if target and target[0] == batch_size and fn.inputs[0].shape[0] == batch_size:
        target[0] = 0                                   # keep the batch dimension dynamic
    graph.node("Reshape", [inputs[0], graph.constant(target, np.int64, "shape")], [output])


@converts(Transpose)
def _transpose(fn, graph, inputs, output, batch_size):
    graph.node("Transpose", inputs, [output], perm=list(fn.perm))


@converts(Softmax)
def _softmax(fn, graph, inputs, output, batch_size):
    graph.node("Softmax", inputs, [output], axis=int(fn.axis))
