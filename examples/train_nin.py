#!/usr/bin/env python
"""Train Network In Network with minidl on any of the paper's four data sets.

    python examples/train_nin.py --dataset cifar10 --backend cupy          # the paper's model on a GPU
    python examples/train_nin.py --dataset cifar100 --quick                # under 3 minutes on a 2-core CPU
    python examples/train_nin.py --dataset cifar100 --data ../shared/datasets/cifar100-png.tar.gz
    python examples/train_nin.py --dataset svhn --extra                    # train + extra, as the paper did
    python examples/train_nin.py --dataset mnist --data path/to/mnist-idx/
    python examples/train_nin.py --dataset cifar10 --resume                # continue runs/nin-cifar10

Writes metrics.jsonl, summary.json, curves.png, checkpoint.safetensors and model.safetensors into --out.
`--help` lists every option (with the defaults of the data set given by --dataset). What differs
between the data sets is one table, minidl/train/tasks.py; the recipe is in minidl/train/recipe.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.train.recipe import run  # noqa: E402


def main(argv=None, dataset=None) -> dict:
    """Train on ``dataset`` (a name of minidl.train.tasks.TASKS), or on --dataset's when it is None."""
    return run(dataset, argv)


if __name__ == "__main__":
    main()
