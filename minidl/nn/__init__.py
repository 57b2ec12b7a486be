"""minidl.nn: layers with parameters (Chainer's "links"), built on minidl.functional."""
from . import init
from .activation import ReLU
from .batchnorm import BatchNorm2d
from .container import Flatten, Sequential
from .conv import Conv2d
from .dropout import Dropout
from .linear import Linear
from .mlpconv import MLPConv
from .module import Module
from .parameter import Parameter
from .pooling import AvgPool2d, GlobalAvgPool2d, MaxPool2d

__all__ = ["Module", "Parameter", "Sequential", "Flatten", "Conv2d", "Linear", "ReLU", "MaxPool2d", "AvgPool2d",
           "GlobalAvgPool2d", "Dropout", "BatchNorm2d", "MLPConv", "init"]
