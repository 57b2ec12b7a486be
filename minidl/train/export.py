"""A run's trained model as files for others: ``model.safetensors`` (and ``model.onnx``).

The training recipe writes ``OUT/model.safetensors`` at the end of every run; ``--export`` writes it
again from ``OUT/checkpoint.safetensors`` (e.g. after a run stopped early), and ``model.onnx`` too
when the ``onnx`` package is installed (``pip install -e '.[onnx]'``). See
:mod:`minidl.models.model_file` for what the model file holds.
"""
from __future__ import annotations

import os

import numpy as np

from ..data.dataset import ArrayDataset
from ..models.model_file import save_model

MODEL_NAME = "model.safetensors"
ONNX_NAME = "model.onnx"


def model_facts(train) -> dict:
    """What the model file needs from the training set, kept in the checkpoint: class names, image shape."""
    return {"classes": list(train.classes), "image_shape": [int(s) for s in train.images.shape[1:]]}


def write_model_file(out_dir, model, classes, image_size, preprocess) -> str:
    path = os.path.join(os.fspath(out_dir), MODEL_NAME)
    save_model(path, model, classes, image_size, preprocess)
    return path


def export_run(task, run_dir, data=None, progress: bool = True, log=print) -> list:
    """Write ``run_dir/model.safetensors`` (and ``model.onnx`` with the onnx extra) from the run's checkpoint.

    A checkpoint written before 2026-12-02 lacks the class names and image shape: the run's data set
    is then read again (from ``data``, or the run's ``--data``). Returns the paths written.
    """
    from . import recipe
    from .checkpoint import CHECKPOINT_NAME, load_checkpoint
    from .loop import upgrade_config
    checkpoint = load_checkpoint(os.path.join(os.fspath(run_dir), CHECKPOINT_NAME))
    extra = checkpoint.get("extra", {})
    if {"classes", "image_shape", "preprocess"} <= set(extra):
        config = upgrade_config(checkpoint["config"])
        shape = tuple(extra["image_shape"])
        like_train = ArrayDataset(np.zeros((0, *shape), np.uint8), np.zeros(0, np.int64), extra["classes"])
        model = recipe.build_model(task, config, like_train)
        model.load_state_dict(checkpoint["model"])
        preprocess = recipe.new_preprocess(config["preprocess"], progress=False)
        preprocess.load_state_dict(extra["preprocess"])
        classes, image_size = extra["classes"], shape[:2]
    else:
        restored = recipe.restore_run(task, run_dir, data=data, progress=progress)
        model, preprocess = restored["model"], restored["preprocess"]
        classes, image_size = restored["train"].classes, restored["train"].images.shape[1:3]
    model.eval()
    written = [write_model_file(run_dir, model, classes, image_size, preprocess)]
    try:
        from .. import onnx as monnx
        monnx.require()
    except ImportError as exc:
        log(f"note: {exc}; model.onnx not written")
    else:
        model.classes, model.image_size, model.preprocess = list(classes), tuple(image_size), preprocess
        path = os.path.join(os.fspath(run_dir), ONNX_NAME)
        monnx.export_classifier(model, path)
        written.append(path)
    return written
