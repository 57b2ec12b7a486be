"""The paper's four data sets, and everything the NIN recipe does differently for each: one table.

``examples/train_nin.py --dataset NAME`` looks its choices up in :data:`TASKS`; the scripts
``train_nin_cifar10.py`` and ``train_nin_mnist.py`` are the same entry point with the data set fixed.
A :class:`Task` says, for one data set:

* how to load it (the official files, downloaded into the cache if need be, or an image folder);
* the input shape and NIN's hidden channel counts: the paper keeps the CIFAR-10 network for CIFAR-100
  (only the last layer makes 100 maps) and for SVHN, and uses fewer feature maps for MNIST;
* the preprocessing and augmentation that suit it (no horizontal flip for digits: a mirrored 2 is no 2);
* the recipe's defaults and the ``--quick`` preset, which fits in 3 minutes on a 2-core CPU.

The paper's own settings, where our defaults differ (see README, "The paper's data sets"):
CIFAR-10 and CIFAR-100 ``--preprocess gcn-zca`` (CIFAR-100 also ``--no-augment``), SVHN ``--extra``
(its default preprocessing, ``lcn``, is the paper's), MNIST as the defaults.
"""
from __future__ import annotations

import dataclasses
from typing import Callable

from .. import data as mdata
from ..models import CIFAR10_CHANNELS, MNIST_CHANNELS


@dataclasses.dataclass(frozen=True)
class Task:
    """What differs between the data sets the NIN recipe trains on."""
    name: str                       # the value of --dataset: "cifar10", "cifar100", "svhn" or "mnist"
    input_shape: tuple              # (C, H, W)
    channels: tuple                 # NIN hidden channels per block
    defaults: dict                  # option defaults
    quick: dict                     # the --quick preset (overrides defaults, not explicit options)
    load: Callable = None           # (location or None, config, progress, log) -> (train, test); None: image folders
    title: str = ""                 # the data set's usual spelling, for messages
    augment_pad: int = 4            # --augment: random translation by up to this many pixels
    augment_flip: bool = True       # --augment: random horizontal flips too
    options: tuple = ()             # the data-set-specific options it takes ("labels", "extra")

    def augment(self) -> "mdata.Augment":
        """The augmentation of ``--augment`` for this data set."""
        return mdata.Augment(pad=self.augment_pad, flip=self.augment_flip)


def _load_cifar10(location, config, progress, log=None):
    if location is None or mdata.looks_like_cifar10(location):
        return mdata.load_cifar10(location, progress=progress)
    return mdata.load_image_folder(location, progress=progress, log=log)


def _load_cifar100(location, config, progress, log=None):
    labels = config.get("labels", "fine")
    if location is None or mdata.looks_like_cifar100(location):
        return mdata.load_cifar100(location, labels=labels, progress=progress)
    train, test = mdata.load_image_folder(location, progress=progress, log=log)      # folders named by fine class
    return (mdata.cifar100_coarse(train), mdata.cifar100_coarse(test)) if labels == "coarse" else (train, test)


def _load_svhn(location, config, progress, log=None):
    if location is None or mdata.looks_like_svhn(location):
        return mdata.load_svhn(location, extra=config.get("extra", False), progress=progress)
    return mdata.load_image_folder(location, progress=progress, log=log)


def _load_mnist(location, config, progress, log=None):
    if location is None or mdata.looks_like_mnist(location):
        return mdata.load_mnist(location, progress=progress)
    return mdata.load_image_folder(location, progress=progress, log=log)


#: a quarter-width NIN with batch norm, a random subset, 2 epochs: under 3 minutes on 2 CPU cores, data
#: loading included (README, "--quick on the 2-core CPU" and "The paper's data sets", has the measured runs)
_QUICK = dict(width=0.25, batch_norm=True, epochs=2, batch_size=64, lr=0.1, dropout=0.0)
_RECIPE = dict(batch_size=128, schedule="onecycle", weight_decay=5e-4)

TASKS = {task.name: task for task in [
    Task(name="cifar10", title="CIFAR-10", input_shape=(3, 32, 32), channels=CIFAR10_CHANNELS,
         defaults=dict(_RECIPE, epochs=100, augment=True),
         # 20,000 images since 2026-12-04 (batch norm's fused ReLU): 12,000 gave 55.2% in 1 min 10 s that day,
         # 24,000 63.0% in 2 min 19 s (README, "--quick on the 2-core CPU"); 20,000 leaves a slower CPU room
         quick=dict(_QUICK, subset=20000, out="runs/nin-cifar10-quick"),
         load=_load_cifar10),
    # the paper keeps the CIFAR-10 network; only its last mlpconv layer makes 100 maps
    Task(name="cifar100", title="CIFAR-100", input_shape=(3, 32, 32), channels=CIFAR10_CHANNELS,
         defaults=dict(_RECIPE, epochs=100, augment=True),
         quick=dict(_QUICK, subset=10000, out="runs/nin-cifar100-quick"),
         load=_load_cifar100, options=("labels",)),
    # the paper: a network like CIFAR-10's, three mlpconv layers, then global average pooling
    Task(name="svhn", title="SVHN", input_shape=(3, 32, 32), channels=CIFAR10_CHANNELS,
         defaults=dict(_RECIPE, epochs=40, augment=False, preprocess="lcn"),
         quick=dict(_QUICK, subset=8000, out="runs/nin-svhn-quick"),
         load=_load_svhn,
         augment_pad=2, augment_flip=False, options=("extra",)),
    # the paper: CIFAR-10's structure with fewer feature maps (it gives no counts: MNIST_CHANNELS are ours)
    Task(name="mnist", title="MNIST", input_shape=(1, 28, 28), channels=MNIST_CHANNELS,
         defaults=dict(_RECIPE, epochs=30, augment=False),
         quick=dict(_QUICK, width=0.5, subset=10000, out="runs/nin-mnist-quick"),
         load=_load_mnist,
         augment_pad=2, augment_flip=False),
]}


def get_task(name) -> Task:
    """The Task called ``name`` (a Task is returned as it is)."""
    if isinstance(name, Task):
        return name
    if name not in TASKS:
        raise ValueError(f"unknown data set {name!r}; expected one of {', '.join(TASKS)}")
    return TASKS[name]
