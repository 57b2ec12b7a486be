"""Preprocessing fitted on the training set and applied to both splits.

All transforms take float32 images (N, H, W, C) on either backend and keep
their fitted statistics as NumPy arrays (for checkpoints), copied to the
images' backend on first use.

* Standardize:            x = (x - mean_c) / std_c, per channel c
* GlobalContrastNormalize: per image, x = scale * (x - mean(x)) / max(eps, std(x))
* ZCAWhitening:           x = (x - mu) @ W,  W = U diag(1 / sqrt(S + eps)) U^T, where
                          U S U^T is the covariance of the flattened training images.
                          Whitening decorrelates neighbouring pixels, leaving edges (the
                          preprocessing of the maxout and NIN papers, with GCN before it).
"""
from __future__ import annotations

import numpy as np

from .. import backends


def to_float(images) -> np.ndarray:
    """uint8 images -> float32 in [0, 1]."""
    xp = backends.get_array_module(images)
    return images.astype(xp.float32) * xp.float32(1 / 255)


class Transform:
    """Base: ``fit(x)`` on training images, ``__call__(x)`` on any batch, state as NumPy arrays."""

    state_names: tuple = ()

    def fit(self, x):
        return self

    def _param(self, name, xp):
        cache = self.__dict__.setdefault("_device_cache", {})
        key = (name, xp.__name__)
        if key not in cache:
            cache[key] = xp.asarray(getattr(self, name))
        return cache[key]

    def state_dict(self) -> dict:
        return {name: getattr(self, name) for name in self.state_names}

    def load_state_dict(self, state: dict) -> None:
        for name in self.state_names:
            setattr(self, name, np.asarray(state[name]) if isinstance(state[name], np.ndarray) else state[name])
        self.__dict__.pop("_device_cache", None)

    def _check_fitted(self):
        for name in self.state_names:
            if getattr(self, name, None) is None:
                raise RuntimeError(f"{type(self).__name__}: call fit(training_images) before transforming")


class Standardize(Transform):
    state_names = ("mean", "std")

    def __init__(self, eps: float = 1e-6):
        self.eps, self.mean, self.std = eps, None, None

    def fit(self, x):
        x = backends.to_numpy(x).astype(np.float64)
        self.mean = x.mean(axis=(0, 1, 2)).astype(np.float32)
        self.std = np.maximum(x.std(axis=(0, 1, 2)), self.eps).astype(np.float32)
        self.__dict__.pop("_device_cache", None)
        return self

    def __call__(self, x):
        self._check_fitted()
        xp = backends.get_array_module(x)
        return (x - self._param("mean", xp)) / self._param("std", xp)


class GlobalContrastNormalize(Transform):
    def __init__(self, scale: float = 55.0, eps: float = 1e-8):
        self.scale, self.eps = scale, eps

    def __call__(self, x):
        xp = backends.get_array_module(x)
        axes = tuple(range(1, x.ndim))
        centered = x - x.mean(axis=axes, keepdims=True)
        std = xp.sqrt((centered * centered).mean(axis=axes, keepdims=True))
        return (centered * xp.float32(self.scale) / xp.maximum(std, xp.float32(self.eps))).astype(xp.float32)


class ZCAWhitening(Transform):
    state_names = ("mean", "whiten")

    def __init__(self, eps: float = 1e-2, batch: int = 4096):
        self.eps, self.batch, self.mean, self.whiten = eps, batch, None, None

    def fit(self, x):
        x = backends.to_numpy(x)
        flat = x.reshape(len(x), -1)
        mean = flat.mean(axis=0, dtype=np.float64)
        cov = np.zeros((flat.shape[1], flat.shape[1]))
        for start in range(0, len(flat), self.batch):
            block = flat[start:start + self.batch].astype(np.float64) - mean
            cov += block.T @ block
        cov /= max(len(flat) - 1, 1)
        eigenvalues, eigenvectors = np.linalg.eigh(cov)
        self.mean = mean.astype(np.float32)
        self.whiten = ((eigenvectors / np.sqrt(np.maximum(eigenvalues, 0) + self.eps)) @ eigenvectors.T).astype(np.float32)
        self.__dict__.pop("_device_cache", None)
        return self

    def __call__(self, x):
        self._check_fitted()
        xp = backends.get_array_module(x)
        flat = x.reshape(len(x), -1)
        out = xp.empty(flat.shape, dtype=xp.float32)
        mean, whiten = self._param("mean", xp), self._param("whiten", xp)
        for start in range(0, len(flat), self.batch):
            out[start:start + self.batch] = (flat[start:start + self.batch] - mean) @ whiten
        return out.reshape(x.shape)


class Compose(Transform):
    """Apply transforms in order; fit each on the output of the ones before it."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def fit(self, x, batch: int = 5000):
        for i, t in enumerate(self.transforms):
            t.fit(x)
            if i < len(self.transforms) - 1:
                x = np.concatenate([t(x[s:s + batch]) for s in range(0, len(x), batch)])
        return self

    def __call__(self, x):
        for t in self.transforms:
            x = t(x)
        return x

    def state_dict(self) -> dict:
        return {str(i): t.state_dict() for i, t in enumerate(self.transforms)}

    def load_state_dict(self, state: dict) -> None:
        for i, t in enumerate(self.transforms):
            t.load_state_dict(state[str(i)])
