#!/usr/bin/env python
"""Train Network In Network on CIFAR-10 with minidl.

    python examples/train_nin_cifar10.py --backend cupy             # the paper's model on a GPU
    python examples/train_nin_cifar10.py --quick                    # ~3 minutes on a 2-core CPU
    python examples/train_nin_cifar10.py --data ../shared/datasets/cifar10-jpeg.tar.gz --backend cupy
    python examples/train_nin_cifar10.py --resume                   # continue runs/nin-cifar10

Writes metrics.jsonl, summary.json, curves.png, checkpoint.safetensors and model.safetensors into --out.
`--help` lists every option. The recipe itself is in minidl/train/recipe.py.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from minidl.models import CIFAR10_CHANNELS  # noqa: E402
from minidl.train.recipe import Task, run  # noqa: E402

CIFAR10 = Task(
    name="cifar10",
    input_shape=(3, 32, 32),
    channels=CIFAR10_CHANNELS,
    defaults=dict(epochs=100, batch_size=128, schedule="onecycle", weight_decay=5e-4, augment=True),
    # a quarter-width NIN with batch norm, a random 8k-image subset, 2 epochs:
    # under 3 minutes on 2 CPU cores, data decoding included (README has the measured run)
    quick=dict(width=0.25, batch_norm=True, subset=8000, epochs=2, batch_size=64, lr=0.1, dropout=0.0,
               out="runs/nin-cifar10-quick"),
)

if __name__ == "__main__":
    run(CIFAR10)
