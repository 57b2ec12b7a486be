"""minidl.functional (import as F): parameter-free differentiable functions.

Each function here wraps a :class:`minidl.engine.Function` subclass whose
``forward`` and ``backward`` sit side by side in the same file.
"""
from .activation import relu
from .arithmetic import add, astype, div, matmul, mul, neg, pow, sub
from .conv import conv2d
from .dropout import dropout
from .elementwise import exp, log
from .linear import linear
from .loss import log_softmax, softmax, softmax_cross_entropy
from .normalization import batch_norm2d
from .pooling import avg_pool2d, global_avg_pool2d, max_pool2d
from .reduction import max, mean, sum
from .shape import concatenate, flatten, getitem, reshape, transpose

cross_entropy = softmax_cross_entropy

__all__ = [
    "relu", "add", "sub", "mul", "div", "neg", "pow", "matmul", "astype", "conv2d", "dropout", "exp", "log",
    "linear", "log_softmax", "softmax", "softmax_cross_entropy", "cross_entropy", "batch_norm2d",
    "avg_pool2d", "global_avg_pool2d", "max_pool2d", "max", "mean", "sum", "concatenate", "flatten",
    "getitem", "reshape", "transpose",
]
