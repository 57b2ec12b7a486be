"""The fitted preprocessing of :mod:`minidl.data.preprocess` as ONNX nodes, on float (N, H, W, C) images.

So that an exported classifier takes the images a user has (uint8, channels-last) and nobody has to
reimplement the preprocessing beside the model file:

* Standardize:  (x - mean) / std, mean and std of shape (C,) broadcast over the last axis;
* GlobalContrastNormalize:  c = x - mean(x over H, W, C); c * scale / max(sqrt(bias + sum or mean(c^2)), eps);
* ZCAWhitening:  Reshape (N, H*W*C), subtract the mean image, MatMul with the whitening matrix, Reshape back;
* Compose:  each in turn.
"""
from __future__ import annotations

import numpy as np

from ..data import preprocess as mpreprocess


def add_preprocess(transform, graph, x: str, image_shape) -> str:
    """Nodes computing ``transform`` on the float32 NHWC tensor named ``x``; returns the result's name."""
    if transform is None:
        return x
    if isinstance(transform, mpreprocess.Compose):
        for part in transform.transforms:
            x = add_preprocess(part, graph, x, image_shape)
        return x
    if isinstance(transform, mpreprocess.Standardize):
        centered = graph.node("Sub", [x, graph.constant(transform.mean, np.float32, "standardize_mean")])
        return graph.node("Div", [centered, graph.constant(transform.std, np.float32, "standardize_std")],
                          hint="standardized")
    if isinstance(transform, mpreprocess.GlobalContrastNormalize):
        mean = graph.reduce("ReduceMean", x, [1, 2, 3], hint="image_mean")
        centered = graph.node("Sub", [x, mean])
        squares = graph.node("Mul", [centered, centered])
        spread = graph.reduce("ReduceMean" if transform.use_std else "ReduceSum", squares, [1, 2, 3])
        biased = graph.node("Add", [spread, graph.constant(transform.sqrt_bias, np.float32, "sqrt_bias")])
        divisor = graph.node("Max", [graph.node("Sqrt", [biased]), graph.constant(transform.eps, np.float32, "eps")])
        factor = graph.node("Div", [graph.constant(transform.scale, np.float32, "gcn_scale"), divisor])
        return graph.node("Mul", [centered, factor], hint="contrast_normalized")
    if isinstance(transform, mpreprocess.ZCAWhitening):
        flat = graph.node("Reshape", [x, graph.constant([0, -1], np.int64, "flat_shape")])
        centered = graph.node("Sub", [flat, graph.constant(transform.mean, np.float32, "zca_mean")])
        white = graph.node("MatMul", [centered, graph.constant(transform.whiten, np.float32, "zca_whiten")])
        return graph.node("Reshape", [white, graph.constant([0, *image_shape], np.int64, "image_shape")],
                          hint="whitened")
    raise NotImplementedError(f"minidl.onnx: no ONNX form for the preprocessing {type(transform).__name__}")
