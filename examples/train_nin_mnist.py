#!/usr/bin/env python
"""Train Network In Network on MNIST with minidl (1x28x28, fewer feature maps).

    python examples/train_nin_mnist.py --backend cupy
    python examples/train_nin_mnist.py --quick                      # ~3 minutes on a 2-core CPU
    python examples/train_nin_mnist.py --data path/to/mnist-idx/    # the four official idx(.gz) files
    python examples/train_nin_mnist.py --data mnist-png.tar.gz      # or an image folder of PNGs

The options are those of train_nin_cifar10.py (`--help`).
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.models import MNIST_CHANNELS  # noqa: E402
from minidl.train.recipe import Task, run  # noqa: E402

MNIST = Task(
    name="mnist",
    input_shape=(1, 28, 28),
    channels=MNIST_CHANNELS,
    defaults=dict(epochs=30, batch_size=128, schedule="onecycle", weight_decay=5e-4, augment=False),
    quick=dict(width=0.5, batch_norm=True, subset=10000, epochs=2, batch_size=64, lr=0.1, dropout=0.0,
               out="runs/nin-mnist-quick"),
)

if __name__ == "__main__":
    run(MNIST)
