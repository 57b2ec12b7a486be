"""Models built from minidl.nn: Network In Network."""
from .nin import CIFAR10_CHANNELS, MNIST_CHANNELS, NIN, nin_cifar10, nin_mnist
from .summary import layer_table, summary

__all__ = ["NIN", "nin_cifar10", "nin_mnist", "CIFAR10_CHANNELS", "MNIST_CHANNELS", "summary", "layer_table"]
