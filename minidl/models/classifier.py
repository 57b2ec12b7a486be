"""`ImageClassifier`: what a trained model needs to classify raw images, and ``predict``.

A trained NIN expects float32 (N, C, H, W) batches that went through the preprocessing fitted on its
training set, at the image size it was trained on. A model loaded by
:func:`minidl.models.load_model` carries all of that (``classes``, ``image_size``, ``preprocess``),
so ``model.predict(images)`` takes what a user has: uint8 images (N, H, W, C) or image files.

    model = minidl.models.load_model("runs/nin-cifar10/model.safetensors")
    probabilities = model.predict(["cat.png", "dog.jpg"])        # (2, 10), rows sum to 1
    model.classes[probabilities[0].argmax()]                     # 'cat'

Images of another size are resized with Pillow (bicubic, antialiased when shrinking); grayscale,
palette and RGBA images are converted to the model's channels (RGBA: the alpha channel is dropped).
"""
from __future__ import annotations

import os
import re

import numpy as np

from .. import backends
from ..data.image_folder import decode_image
from ..data.preprocess import to_float
from ..engine.function import no_grad
from ..engine.tensor import Tensor


def load_images(items, image_size, channels: int) -> np.ndarray:
    """uint8 (N, H, W, C) images at ``image_size`` (H, W) with ``channels`` (1 or 3) from ``items``.

    ``items``: a uint8 array (N, H, W, C) or (N, H, W), or a list of file paths and uint8 arrays
    (H, W, C) / (H, W). Raises FileNotFoundError for a missing file, ValueError for a file that is
    not an image or an array of the wrong dtype or shape.
    """
    if isinstance(items, np.ndarray) or backends.is_cupy_array(items):
        array = backends.to_numpy(items)
        if array.ndim not in (3, 4):
            raise ValueError(f"predict: expected uint8 images (N, H, W, C) or (N, H, W), got shape {array.shape}")
        items = list(array)
    elif isinstance(items, (str, os.PathLike)):
        items = [items]
    out = np.empty((len(items), *image_size, channels), dtype=np.uint8)
    for i, item in enumerate(items):
        out[i] = _one_image(item, image_size, channels)
    return out


def _one_image(item, image_size, channels: int) -> np.ndarray:
    from PIL import Image

    mode = "RGB" if channels == 3 else "L"
    if isinstance(item, (str, os.PathLike)):
        path = os.fspath(item)
        if not os.path.isfile(path):
            raise FileNotFoundError(f"predict: no image file at {path}")
        with open(path, "rb") as f:
            raw = f.read()
        try:
            pixels, _ = decode_image(raw, mode, path)
        except ValueError as exc:
            detail = re.sub(r" <_io\.BytesIO object at \w+>", "", str(exc).split(" (", 1)[-1].rstrip(")"))
            raise ValueError(f"predict: {path} is not an image Pillow can read ({detail})") from None
    else:
        pixels = np.asarray(backends.to_numpy(item))
        if pixels.dtype != np.uint8 or pixels.ndim not in (2, 3) or (pixels.ndim == 3 and pixels.shape[2] not in (1, 3, 4)):
            raise ValueError(f"predict: expected uint8 images (H, W, C) with C in 1, 3, 4, or (H, W); "
                             f"got dtype {pixels.dtype} and shape {pixels.shape}")
        if pixels.ndim == 3 and pixels.shape[2] == channels:
            pass
        else:
            if pixels.ndim == 3 and pixels.shape[2] == 1:
                pixels = pixels[:, :, 0]
            pixels = np.asarray(Image.fromarray(pixels).convert(mode), dtype=np.uint8)
    if pixels.ndim == 2:
        pixels = pixels[:, :, None]
    if pixels.shape[:2] != tuple(image_size):
        image = Image.fromarray(pixels[:, :, 0] if channels == 1 else pixels)
        resized = image.resize((image_size[1], image_size[0]), Image.Resampling.BICUBIC)
        pixels = np.asarray(resized, dtype=np.uint8).reshape(*image_size, channels)
    return pixels


class ImageClassifier:
    """Mixin for models that classify images: ``classes``, ``image_size``, ``preprocess`` and :meth:`predict`.

    They are None on a freshly built model; :func:`minidl.models.load_model` sets them.
    """

    classes = None          # list of class names, in the order of the logits
    image_size = None       # (H, W) of the training images
    preprocess = None       # the fitted minidl.data transform (on float32 (N, H, W, C) in [0, 1]), or None

    def prepare(self, images, backend: str | None = None) -> Tensor:
        """uint8 images or files -> the float32 (N, C, H, W) Tensor the model takes (channels-last inside)."""
        if self.image_size is None:
            raise RuntimeError(f"{type(self).__name__}.predict: this model has no image_size; use a model from "
                               "minidl.models.load_model, or set model.image_size = (H, W)")
        channels = self.config["in_channels"] if hasattr(self, "config") else 3
        images = load_images(images, self.image_size, channels)
        x = to_float(backends.to_backend(images, backend))
        if self.preprocess is not None:
            x = self.preprocess(x)
        xp = backends.get_array_module(x)
        return Tensor(xp.ascontiguousarray(x, dtype=xp.float32).transpose(0, 3, 1, 2))

    def predict(self, images, batch_size: int = 256) -> np.ndarray:
        """Class probabilities (N, num_classes) as float32 NumPy, for uint8 images (N, H, W, C) or file paths.

        Runs in eval mode without a graph, ``batch_size`` images at a time; probabilities = softmax(logits).
        """
        from ..functional import softmax
        if isinstance(images, np.ndarray) or backends.is_cupy_array(images):
            count = len(images)
        else:
            images = [images] if isinstance(images, (str, os.PathLike)) else list(images)
            count = len(images)
        first = next(self.parameters(), None)
        backend = backends.backend_of(first.data) if first is not None else None
        was_training = self.training
        self.eval()
        parts = []
        try:
            with no_grad():
                for start in range(0, count, batch_size):
                    logits = self(self.prepare(images[start:start + batch_size], backend))
                    parts.append(backends.to_numpy(softmax(logits, axis=1).data))
        finally:
            self.train(was_training)
        classes = len(self.classes) if self.classes is not None else 0
        return np.concatenate(parts) if parts else np.zeros((0, classes), np.float32)
