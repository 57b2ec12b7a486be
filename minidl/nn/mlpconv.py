"""`MLPConv`: NIN's micro network, a small MLP slid over the image.

A kh x kw convolution followed by 1x1 convolutions, each with a ReLU. At every
pixel the 1x1 layers form a fully connected network across channels
("cascaded cross-channel parametric pooling"); the map size stays the same.

    MLPConv(3, [192, 160, 96], kernel_size=5, padding=2)
    = Conv2d(3, 192, 5, padding=2), ReLU, Conv2d(192, 160, 1), ReLU, Conv2d(160, 96, 1), ReLU

Its forward pass hands each ReLU that directly follows a Conv2d or a BatchNorm2d to that layer
(``activation="relu"``, minidl/functional/conv.py and normalization.py), which clips its outputs
while they are still in the cache; the ReLU module is still called, and passes the result
through. The values and gradients are those of the layers one after the other.
"""
from __future__ import annotations

from .activation import ReLU
from .batchnorm import BatchNorm2d
from .container import Sequential
from .conv import Conv2d


class MLPConv(Sequential):
    def __init__(self, in_channels: int, channels, kernel_size, stride=1, padding=0,
                 batch_norm: bool = False, init="he"):
        channels = list(channels)
        if not channels:
            raise ValueError("MLPConv: channels must list at least one layer's output channels")
        layers = []
        previous = in_channels
        for i, out in enumerate(channels):
            if i == 0:
                layers.append(Conv2d(previous, out, kernel_size, stride, padding, bias=not batch_norm, init=init))
            else:
                layers.append(Conv2d(previous, out, 1, bias=not batch_norm, init=init))
            if batch_norm:
                layers.append(BatchNorm2d(out))
            layers.append(ReLU())
            previous = out
        super().__init__(*layers)
        self.in_channels, self.channels = in_channels, channels

    def forward(self, x):
        layers = list(self)
        for i, layer in enumerate(layers):
            # exact types: a subclass (SyncBatchNorm, say) may compute something else, and then nothing is fused
            fuse = type(layer) in (Conv2d, BatchNorm2d) and i + 1 < len(layers) and type(layers[i + 1]) is ReLU
            x = layer(x, activation="relu") if fuse else layer(x)
        return x
