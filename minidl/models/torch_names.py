"""The same network in PyTorch: a flat ``torch.nn.Sequential``, and the map between the two sets of names.

minidl's NIN nests its layers (``features`` > MLPConv blocks > layers); the PyTorch NIN most people
write is one flat ``nn.Sequential`` of the same layers in the same order, global average pooling
written as ``AdaptiveAvgPool2d(1)`` then ``Flatten()``. Both keep a conv weight as (O, C, kh, kw) and
every other array with the same shape, so moving weights across is renaming only. For the paper's
NIN without batch norm:

=============================  ==========  ===================================
minidl (``state_dict()``)      PyTorch     layer
=============================  ==========  ===================================
``features.0.0.weight/bias``   ``0.*``     mlpconv1: 5x5 conv 3 -> 192
``features.0.2.weight/bias``   ``2.*``     1x1 conv 192 -> 160 (1, 3: ReLU)
``features.0.4.weight/bias``   ``4.*``     1x1 conv 160 -> 96
(``features.1``, ``.2``)       ``6, 7``    max pool 3/2, dropout
``features.3.0.weight/bias``   ``8.*``     mlpconv2 ...
``features.6.4.weight/bias``   ``20.*``    1x1 conv 192 -> 10
(``gap``)                      ``22, 23``  AdaptiveAvgPool2d(1), Flatten()
=============================  ==========  ===================================

With batch norm each BatchNorm2d is one more layer after its conv (``weight``, ``bias``,
``running_mean``, ``running_var``); PyTorch's BatchNorm2d also has a ``num_batches_tracked``
counter, which minidl does not keep (it only matters for ``momentum=None``): load with
``strict=False`` or add it. :func:`torch_names` computes the map for any model built of these
layers; ``model.safetensors`` prefixes minidl's names with ``model.``.

    names = torch_names(model)                                  # {"features.0.0.weight": "0.weight", ...}
    weights = safetensors.torch.load_file("model.safetensors")
    net = torch_sequential(model)
    net.load_state_dict({names[k[len("model."):]]: v for k, v in weights.items() if k.startswith("model.")},
                        strict=False)
"""
from __future__ import annotations

from .. import nn


def _torch_layers(module, torch_nn) -> list:
    """The PyTorch layers equivalent to one minidl leaf module (GlobalAvgPool2d: two)."""
    if isinstance(module, nn.Conv2d):
        return [torch_nn.Conv2d(module.in_channels, module.out_channels, module.kernel_size, module.stride,
                                module.padding, bias=module.bias is not None)]
    if isinstance(module, nn.BatchNorm2d):
        return [torch_nn.BatchNorm2d(module.num_features, eps=module.eps, momentum=module.momentum)]
    if isinstance(module, nn.ReLU):
        return [torch_nn.ReLU()]
    if isinstance(module, nn.AvgPool2d):          # before MaxPool2d: AvgPool2d subclasses it
        return [torch_nn.AvgPool2d(module.kernel_size, module.stride, module.padding, count_include_pad=True)]
    if isinstance(module, nn.MaxPool2d):
        return [torch_nn.MaxPool2d(module.kernel_size, module.stride, module.padding)]
    if isinstance(module, nn.Dropout):
        return [torch_nn.Dropout(module.p)]
    if isinstance(module, nn.GlobalAvgPool2d):
        return [torch_nn.AdaptiveAvgPool2d(1), torch_nn.Flatten()]
    if isinstance(module, nn.Flatten):
        return [torch_nn.Flatten()]
    if isinstance(module, nn.Linear):
        return [torch_nn.Linear(module.in_features, module.out_features, bias=module.bias is not None)]
    raise TypeError(f"torch_names: no PyTorch equivalent known for {type(module).__name__}")


def _leaves(model):
    return [(name, m) for name, m in model.named_modules() if not m._modules]


def _layer_counts(model) -> list:
    """(leaf name, leaf, number of PyTorch layers it becomes), in order; no torch needed."""
    two = (nn.GlobalAvgPool2d,)
    return [(name, m, 2 if isinstance(m, two) else 1) for name, m in _leaves(model)]


def torch_names(model) -> dict:
    """{minidl state_dict name: name in :func:`torch_sequential`'s state_dict} for every array of ``model``."""
    names, owners, position = {}, {}, 0
    for leaf_name, _, count in _layer_counts(model):
        owners[leaf_name] = position
        position += count
    for key in model.state_dict():
        leaf_name, _, attribute = key.rpartition(".")
        if leaf_name not in owners:
            raise KeyError(f"torch_names: {key} does not belong to a leaf layer")
        names[key] = f"{owners[leaf_name]}.{attribute}"
    return names


def torch_sequential(model):
    """A flat ``torch.nn.Sequential`` with ``model``'s layers, in eval/train mode as ``model`` (weights: PyTorch's init)."""
    import torch
    layers = [layer for _, module in _leaves(model) for layer in _torch_layers(module, torch.nn)]
    net = torch.nn.Sequential(*layers)
    return net.train(model.training)
