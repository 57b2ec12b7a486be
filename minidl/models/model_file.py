"""``model.safetensors``: a trained model in one file that rebuilds it with no other file and runs no code.

    save_model("model.safetensors", model, classes=train.classes, image_size=(32, 32), preprocess=prep)
    model = load_model("model.safetensors")          # a NIN in eval mode, with predict()

The file is written by :func:`minidl.save` (:mod:`minidl.serialization`), so its tensors are plain
safetensors tensors that PyTorch reads with ``safetensors.torch.load_file``. It holds:

* ``model.<name>``: every entry of ``model.state_dict()`` (weights, batch-norm running statistics),
  e.g. ``model.features.0.0.weight`` (O, C, kh, kw), PyTorch's layout; see :mod:`minidl.models.torch_names`
  for the names of the same NIN built as a PyTorch ``nn.Sequential``;
* ``architecture`` and ``config``: the model's class (``"NIN"``) and constructor arguments;
* ``classes`` (names in the order of the logits), ``image_size`` (H, W of the training images);
* ``preprocess``: the fitted preprocessing, as its transform classes and their states
  (``{"type": "Standardize", "state": {"mean": ..., "std": ..., "eps": ...}}``, or a ``Compose`` of them).
"""
from __future__ import annotations

import os

from .. import serialization
from ..data import preprocess as mpreprocess
from .nin import NIN

FORMAT = "minidl.model"
VERSION = 1
#: the model classes a model file may name (nothing else is ever constructed from a file)
ARCHITECTURES = {"NIN": NIN}
#: the preprocessing transforms a model file may name
TRANSFORMS = {cls.__name__: cls for cls in (mpreprocess.Standardize, mpreprocess.GlobalContrastNormalize,
                                            mpreprocess.ZCAWhitening, mpreprocess.LocalContrastNormalize)}


class ModelFileError(ValueError):
    """A file that is not a minidl model file (one line, for the command line)."""


def describe_transform(transform) -> dict | None:
    """A fitted minidl.data transform as plain values: ``{"type": name, "state": ...}`` (Compose: ``transforms``)."""
    if transform is None:
        return None
    if isinstance(transform, mpreprocess.Compose):
        return {"type": "Compose", "transforms": [describe_transform(t) for t in transform.transforms]}
    name = type(transform).__name__
    if TRANSFORMS.get(name) is not type(transform):
        raise TypeError(f"save_model: cannot store a preprocessing of type {name}; "
                        f"known: Compose, {', '.join(sorted(TRANSFORMS))}")
    return {"type": name, "state": transform.state_dict()}


def rebuild_transform(description):
    """The fitted transform :func:`describe_transform` described."""
    if description is None:
        return None
    kind = description.get("type")
    if kind == "Compose":
        return mpreprocess.Compose([rebuild_transform(d) for d in description["transforms"]])
    if kind not in TRANSFORMS:
        raise ModelFileError(f"unknown preprocessing {kind!r} (known: Compose, {', '.join(sorted(TRANSFORMS))})")
    transform = TRANSFORMS[kind](progress=False) if kind == "ZCAWhitening" else TRANSFORMS[kind]()
    transform.load_state_dict(description["state"])
    return transform


def model_file_contents(model, classes, image_size, preprocess=None) -> dict:
    """What :func:`save_model` writes, as a dict (``model.config`` holds the constructor arguments)."""
    name = type(model).__name__
    if ARCHITECTURES.get(name) is not type(model):
        raise TypeError(f"save_model: can store {', '.join(ARCHITECTURES)} models, got {name}")
    if len(classes) != model.config["num_classes"]:
        raise ValueError(f"save_model: the model has {model.config['num_classes']} classes, "
                         f"got {len(classes)} class names")
    return {"format": FORMAT, "version": VERSION, "architecture": name, "config": dict(model.config),
            "classes": [str(c) for c in classes], "image_size": [int(s) for s in image_size],
            "preprocess": describe_transform(preprocess), "model": dict(model.state_dict())}


def save_model(path, model, classes, image_size, preprocess=None) -> None:
    """Write ``model`` with its class names, training image size (H, W) and fitted preprocessing (atomic)."""
    serialization.save(model_file_contents(model, classes, image_size, preprocess), path, name="model_file")


def load_model(path, backend: str | None = None):
    """The model saved by :func:`save_model`, on ``backend`` (default: active), in eval mode.

    It has ``classes``, ``image_size``, ``preprocess`` and ``predict(images)`` (see
    :class:`minidl.models.classifier.ImageClassifier`). Raises FileNotFoundError for a missing file
    and :class:`ModelFileError` (a ValueError) for anything that is not a minidl model file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_model: no model file at {path}")
    try:
        saved = serialization.load(path, map_location="numpy")
    except serialization.SerializationError as exc:
        raise ModelFileError(f"load_model: {path} is not a minidl model file ({exc})") from None
    if not isinstance(saved, dict) or saved.get("format") != FORMAT:
        what = "a training checkpoint" if isinstance(saved, dict) and "optimizer" in saved else "another minidl file"
        hint = " (export a model file from the run with --export)" if what == "a training checkpoint" else ""
        raise ModelFileError(f"load_model: {path} is {what}, not a minidl model file{hint}")
    if saved.get("version", 0) > VERSION:
        raise ModelFileError(f"load_model: {path} is a model file of version {saved['version']}; this minidl "
                             f"reads up to version {VERSION}")
    if saved.get("architecture") not in ARCHITECTURES:
        raise ModelFileError(f"load_model: {path} holds an unknown architecture {saved.get('architecture')!r}")
    config = dict(saved["config"])
    config["channels"] = [tuple(block) for block in config["channels"]]
    model = ARCHITECTURES[saved["architecture"]](**config)
    if backend is not None:
        model.to(backend)
    model.load_state_dict(saved["model"])
    model.eval()
    model.classes = list(saved["classes"])
    model.image_size = tuple(saved["image_size"])
    model.preprocess = rebuild_transform(saved["preprocess"])
    return model
