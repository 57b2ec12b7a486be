"""Models built from minidl.nn: Network In Network; model files (save_model, load_model) and predict."""
from .classifier import ImageClassifier, load_images
from .model_file import ModelFileError, load_model, save_model
from .nin import CIFAR10_CHANNELS, MNIST_CHANNELS, NIN, nin_cifar10, nin_mnist
from .summary import layer_table, summary

__all__ = ["NIN", "nin_cifar10", "nin_mnist", "CIFAR10_CHANNELS", "MNIST_CHANNELS", "summary", "layer_table",
           "ImageClassifier", "load_images", "load_model", "save_model", "ModelFileError"]
