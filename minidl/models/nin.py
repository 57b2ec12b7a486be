"""Network In Network (Lin, Chen and Yan, 2013) for CIFAR-10 and MNIST.

Three mlpconv blocks, pooling and dropout between them, and global average
pooling as the classifier: the last block makes one feature map per class, and
each map's average is that class's score (the logit that goes into softmax).

CIFAR-10 (3x32x32), the table of the paper, about 0.97 M parameters:

    mlpconv1  5x5 conv 192, 1x1 160, 1x1 96     -> 96x32x32
    max pool 3x3/2 (pad 1), dropout 0.5          -> 96x16x16
    mlpconv2  5x5 conv 192, 1x1 192, 1x1 192    -> 192x16x16
    max pool 3x3/2 (pad 1), dropout 0.5          -> 192x8x8
    mlpconv3  3x3 conv 192, 1x1 192, 1x1 10     -> 10x8x8
    global average pool                          -> 10

ReLU follows every convolution (inside MLPConv).
"""
from __future__ import annotations

from .. import nn

#: hidden channels of each mlpconv block at width 1.0 (the last block ends with num_classes)
CIFAR10_CHANNELS = ((192, 160, 96), (192, 192, 192), (192, 192))
#: fewer feature maps for MNIST, as the paper does (our choice of widths; the paper does not list them)
MNIST_CHANNELS = ((96, 64, 48), (128, 96, 48), (128, 96))


class NIN(nn.Module):
    """Network In Network.

    Args:
        num_classes: maps of the last mlpconv layer = number of classes.
        in_channels: 3 for RGB, 1 for grayscale.
        batch_norm: add BatchNorm2d after every convolution (the modern variant).
        dropout: dropout probability after the first two blocks.
        width: multiplies every hidden channel count (e.g. 0.25 for a quick CPU run).
        pool2: "max" (the paper's table) or "avg" (the Caffe model that came with the paper).
        channels: hidden channels per block, default :data:`CIFAR10_CHANNELS`.
        init: how every conv starts: "he" (He normal, zero bias), "uniform" (PyTorch's layer
            default) or a Gaussian std such as 0.05 (see :mod:`minidl.nn.init`).

    Input (N, in_channels, H, W) -> logits (N, num_classes).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False,
                 dropout: float = 0.5, width: float = 1.0, pool2: str = "max", channels=None,
                 init="he"):
        super().__init__()
        if pool2 not in ("max", "avg"):
            raise ValueError(f"NIN: pool2 must be 'max' or 'avg', got {pool2!r}")
        if width <= 0:
            raise ValueError(f"NIN: width must be positive, got {width}")
        init = nn.init.check_scheme(init, "NIN")
        channels = CIFAR10_CHANNELS if channels is None else channels
        (c1, c2, c3) = [[max(1, round(c * width)) for c in block] for block in channels]
        c3 = c3 + [num_classes]
        self.config = dict(num_classes=num_classes, in_channels=in_channels, batch_norm=batch_norm,
                           dropout=dropout, width=width, pool2=pool2,
                           channels=[list(b) for b in channels], init=init)
        second_pool = nn.MaxPool2d(3, 2, 1) if pool2 == "max" else nn.AvgPool2d(3, 2, 1)
        self.features = nn.Sequential(
            nn.MLPConv(in_channels, c1, kernel_size=5, padding=2, batch_norm=batch_norm, init=init),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.Dropout(dropout),
            nn.MLPConv(c1[-1], c2, kernel_size=5, padding=2, batch_norm=batch_norm, init=init),
            second_pool,
            nn.Dropout(dropout),
            nn.MLPConv(c2[-1], c3, kernel_size=3, padding=1, batch_norm=batch_norm, init=init),
        )
        self.gap = nn.GlobalAvgPool2d()

    def forward(self, x):
        return self.gap(self.features(x))

    def class_maps(self, x):
        """The last mlpconv layer's maps (N, num_classes, H', W'): what GAP averages into scores."""
        return self.features(x)

    def summary(self, input_shape=(3, 32, 32)) -> str:
        from .summary import summary
        return summary(self, input_shape)


def nin_cifar10(**kwargs) -> NIN:
    return NIN(num_classes=10, in_channels=3, **kwargs)


def nin_mnist(**kwargs) -> NIN:
    kwargs.setdefault("channels", MNIST_CHANNELS)
    return NIN(num_classes=10, in_channels=1, **kwargs)
