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

``head`` chooses the classifier on top of those maps, for the paper's comparison
(its table 2: the mlpconv stack unchanged, only the classifier swapped):

    "gap"         global average pooling: 0 parameters            (paper: 10.41% test error)
    "fc"          flatten the 10x8x8 maps, one Linear 640 -> 10    (paper: 11.59%)
    "fc-dropout"  the same with dropout 0.5 before the Linear       (paper: 10.88%)

The paper does not give the sizes of its fully connected layers; we keep
everything before the classifier identical, so the heads differ only in how the
class maps become scores.
"""
from __future__ import annotations

from .. import nn
from .classifier import ImageClassifier

#: hidden channels of each mlpconv block at width 1.0 (the last block ends with num_classes)
CIFAR10_CHANNELS = ((192, 160, 96), (192, 192, 192), (192, 192))
#: fewer feature maps for MNIST, as the paper does (our choice of widths; the paper does not list them)
MNIST_CHANNELS = ((96, 64, 48), (128, 96, 48), (128, 96))
#: the classifiers NIN can end with (see the module docstring)
HEADS = ("gap", "fc", "fc-dropout")


def pooled_size(n: int) -> int:
    """Side of a map after one 3x3, stride 2, padding 1 pool: floor((n + 2 - 3) / 2) + 1 (32 -> 16 -> 8)."""
    return (n + 2 * 1 - 3) // 2 + 1


class NIN(ImageClassifier, nn.Module):
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
        head: "gap" (the paper's NIN), "fc" or "fc-dropout" (the fully connected classifiers it
            compares against; see the module docstring).
        image_size: input side (or (H, W)); only the fully connected heads need it, to size their Linear.

    Input (N, in_channels, H, W) -> logits (N, num_classes).
    The default head keeps the state_dict keys of every earlier NIN (``features.*``); the fully
    connected heads add ``classifier.*``. A model read by :func:`minidl.models.load_model` also
    classifies raw images: ``predict`` (:class:`ImageClassifier`).
    """

    def __init__(self, num_classes: int = 10, in_channels: int = 3, batch_norm: bool = False,
                 dropout: float = 0.5, width: float = 1.0, pool2: str = "max", channels=None,
                 init="he", head: str = "gap", image_size=32):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"NIN: head must be one of {', '.join(map(repr, HEADS))}, got {head!r}")
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
                           channels=[list(b) for b in channels], init=init, head=head)
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
        height, width_ = (image_size, image_size) if isinstance(image_size, int) else tuple(image_size)
        if min(height, width_) < 1:
            raise ValueError(f"NIN: image_size must be positive, got {image_size!r}")
        self.config["image_size"] = [height, width_]
        self.head = head
        if head == "gap":
            self.gap = nn.GlobalAvgPool2d()
        else:
            maps = num_classes * pooled_size(pooled_size(height)) * pooled_size(pooled_size(width_))
            layers = [nn.Flatten()] + ([nn.Dropout(0.5)] if head == "fc-dropout" else [])
            self.classifier = nn.Sequential(*layers, nn.Linear(maps, num_classes, init=init))

    def forward(self, x):
        maps = self.features(x)
        if self.head == "gap":
            return self.gap(maps)
        if list(x.shape[2:]) != self.config["image_size"]:
            raise ValueError(f"NIN: head {self.head!r} was built for {self.config['image_size'][0]}x"
                             f"{self.config['image_size'][1]} images (image_size), got input of shape {tuple(x.shape)}")
        return self.classifier(maps)

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
