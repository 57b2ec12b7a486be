#!/usr/bin/env python
"""Train Network In Network on CIFAR-10: ``examples/train_nin.py --dataset cifar10``, under its old name.

    python examples/train_nin_cifar10.py --backend cupy             # the paper's model on a GPU
    python examples/train_nin_cifar10.py --quick                    # under 3 minutes on a 2-core CPU
    python examples/train_nin_cifar10.py --data ../shared/datasets/cifar10-jpeg.tar.gz --backend cupy
"""
import os
import sys

sys.path[:0] = [os.path.dirname(os.path.abspath(__file__))]

from train_nin import main  # noqa: E402
from minidl.train.tasks import TASKS  # noqa: E402

CIFAR10 = TASKS["cifar10"]

if __name__ == "__main__":
    main(dataset="cifar10")
