#!/usr/bin/env python
"""Train Network In Network on MNIST: ``examples/train_nin.py --dataset mnist``, under its old name.

    python examples/train_nin_mnist.py --quick                      # under 3 minutes on a 2-core CPU
    python examples/train_nin_mnist.py --data path/to/mnist-idx/    # the four official idx(.gz) files
    python examples/train_nin_mnist.py --data mnist-png.tar.gz      # or an image folder of PNGs
"""
import os
import sys

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]

from train_nin import main  # noqa: E402
from minidl.train.tasks import TASKS  # noqa: E402

MNIST = TASKS["mnist"]

if __name__ == "__main__":
    main(dataset="mnist")
