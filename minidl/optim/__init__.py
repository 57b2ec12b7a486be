"""minidl.optim: optimizers and learning-rate schedules, with PyTorch's names and semantics.

    from minidl import optim
    opt = optim.SGD(model.parameters(), lr=0.05, momentum=0.9, weight_decay=5e-4)
    schedule = optim.lr_scheduler.OneCycleLR(opt, max_lr=0.05, total_steps=epochs * len(loader))

* :class:`Optimizer`: parameter groups, per-parameter state, ``state_dict`` (optimizer.py)
* :class:`SGD` (sgd.py), :class:`Adam` and :class:`AdamW` (adam.py)
* :mod:`lr_scheduler`: StepLR, MultiStepLR, CosineAnnealingLR, LinearLR (warm-up), SequentialLR,
  OneCycleLR, ReduceLROnPlateau
"""
from . import lr_scheduler
from .adam import Adam, AdamW
from .lr_scheduler import (CosineAnnealingLR, LinearLR, LRScheduler, MultiStepLR, OneCycleLR, ReduceLROnPlateau,
                           SequentialLR, StepLR)
from .optimizer import Optimizer
from .sgd import SGD

__all__ = ["Optimizer", "SGD", "Adam", "AdamW", "lr_scheduler", "LRScheduler", "StepLR", "MultiStepLR",
           "CosineAnnealingLR", "LinearLR", "SequentialLR", "OneCycleLR", "ReduceLROnPlateau"]
