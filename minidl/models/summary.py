"""A model summary: every leaf layer's output shape, parameters and multiply-adds.

It runs one image through the model in eval mode without building a graph and
counts, per layer, multiply-adds as a convolution does them:
O * C * kh * kw * Ho * Wo (a linear layer: out * in).
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..engine.function import no_grad
from ..engine.tensor import Tensor
from .. import nn


def layer_table(model: nn.Module, input_shape) -> list:
    """Rows (name, layer type, output shape, parameters, multiply-adds) for each leaf module, in order."""
    rows = []
    was_training = model.training
    model.eval()
    first = next(model.parameters(), None)
    xp = backends.get_array_module(first.data) if first is not None else np
    dtype = first.dtype if first is not None else np.float32
    leaves = [(name, m) for name, m in model.named_modules() if not m._modules]

    originals = {}

    def wrap(name, module):
        original = module.forward

        def forward(x, **options):
            y = original(x, **options)
            params = sum(p.size for p in module._parameters.values() if p is not None)
            macs = 0
            if isinstance(module, nn.Conv2d):
                o, c, kh, kw = module.weight.shape
                macs = o * c * kh * kw * y.shape[2] * y.shape[3]
            elif isinstance(module, nn.Linear):
                macs = module.weight.shape[0] * module.weight.shape[1]
            rows.append((name, type(module).__name__, tuple(y.shape[1:]), params, macs))
            return y

        originals[name] = (module, original)
        object.__setattr__(module, "forward", forward)

    wrapped = set()
    for name, module in leaves:
        if id(module) not in wrapped:          # a layer used twice is wrapped once, and gives a row per call
            wrapped.add(id(module))
            wrap(name, module)
    try:
        with no_grad():
            model(Tensor(xp.zeros((1, *input_shape), dtype=dtype)))
    finally:
        for module, _ in originals.values():
            module.__dict__.pop("forward", None)
        model.train(was_training)
    return rows


def summary(model: nn.Module, input_shape=(3, 32, 32)) -> str:
    rows = layer_table(model, input_shape)
    header = f"{'layer':<22} {'type':<16} {'output shape':<16} {'params':>10} {'mult-adds':>14}"
    lines = [header, "-" * len(header)]
    for name, kind, shape, params, macs in rows:
        lines.append(f"{name:<22} {kind:<16} {'x'.join(map(str, shape)):<16} {params:>10,} {macs:>14,}")
    total_params = model.num_parameters()
    total_macs = sum(r[4] for r in rows)
    lines.append("-" * len(header))
    lines.append(f"{'total':<22} {'':<16} {'':<16} {total_params:>10,} {total_macs:>14,}")
    lines.append(f"forward: {2 * total_macs / 1e9:.3f} GFLOP per image (1 multiply-add = 2 FLOP)")
    return "\n".join(lines)
