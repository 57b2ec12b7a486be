"""Preprocessing: statistics fitted on the training set, applied to every batch or once to a whole set.

A network trains faster on inputs that are centred and of similar scale in
every direction. The transforms here compute what they need from the
*training* images only (``fit``), then apply exactly the same mapping to
training and test batches (``__call__``): using test statistics would leak
information about the test set into the model.

All of them take float32 images (N, H, W, C) in [0, 1] (see :func:`to_float`),
on NumPy or CuPy: ``__call__`` works on the batch's own backend, with the
fitted statistics copied to that backend once. The statistics themselves are
kept as NumPy arrays and floats, so ``state_dict()`` can go into a checkpoint
and ``load_state_dict()`` restores a fitted transform without refitting.

* :class:`Standardize`, per channel c:
  ``x' = (x - mean_c) / std_c``, mean and std over all training pixels.
* :class:`GlobalContrastNormalize` (GCN), per image, with no fitting:
  ``x' = scale * (x - mean(x)) / max(eps, sqrt(sqrt_bias + sum((x - mean(x))^2)))``
  (or with the mean of the squares, i.e. the standard deviation, when
  ``use_std``). Images then differ in content, not in brightness or contrast.
* :class:`ZCAWhitening`:
  ``x' = (x - mu) @ W`` on flattened images, with ``W = U diag(1/sqrt(S + eps)) U^T``
  where ``U diag(S) U^T`` is the eigendecomposition of the training covariance.
  The whitened pixels are decorrelated with unit variance (up to ``eps``), which
  removes the strong correlation between neighbouring pixels and leaves edges;
  "ZCA" (zero-phase) means W is symmetric, so the result still looks like the
  image. GCN followed by ZCA is the preprocessing of the maxout and Network In
  Network papers for CIFAR-10 (Goodfellow et al. 2013; Lin et al. 2014).
* :class:`LocalContrastNormalize` (LCN), per image and channel, with no fitting: subtract a
  Gaussian-weighted local mean, divide by the local standard deviation (or by its mean over
  the image where that is larger). Only local changes of brightness remain: the preprocessing
  of the maxout and Network In Network papers for SVHN (after Jarrett et al. 2009).
* :class:`Compose` chains transforms, fitting each on the output of the previous ones.

Every transform here is deterministic, so it can run once instead of on every batch of
every epoch: :func:`apply_to_images` maps a whole uint8 image set to float32 through a
fitted transform, a chunk at a time; an :class:`~minidl.data.ArrayDataset` holds the
result and a :class:`~minidl.data.DataLoader` over it needs no ``transform``.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from ..progress import progress_bar


def to_float(images):
    """uint8 images -> float32 in [0, 1] (value / 255), on the images' own backend."""
    xp = backends.get_array_module(images)
    if images.dtype != np.uint8:
        raise TypeError(f"to_float: expected uint8 images, got dtype {images.dtype}")
    return images.astype(xp.float32) / xp.float32(255)


def apply_to_images(transform, images, chunk_size: int = 1000, progress: bool = True,
                    desc: str = "preprocessing", backend: str | None = None) -> np.ndarray:
    """``transform(to_float(images))`` for a whole uint8 image set (N, H, W, C): float32 NumPy (N, H, W, C).

    For a transform too costly to repeat on every batch of every epoch (GCN + ZCA whitening costs
    a (N, D) @ (D, D) product, D = H * W * C): compute it once and keep the float32 result, 4 bytes
    a value (CIFAR-10's 50,000 training images: 614 MB). The images go through ``chunk_size`` at a
    time, each chunk on ``backend`` (default: the active one, so the GPU does the work under CuPy)
    and back to the host, so the temporaries stay the size of one chunk. Each image's result is
    that of ``transform`` on a batch holding it, up to float rounding (the matrix product's
    blocking may depend on the number of rows). ``progress``: a tqdm bar described by ``desc``.
    """
    images = np.asarray(images)
    if images.dtype != np.uint8 or images.ndim != 4:
        raise TypeError(f"apply_to_images: expected uint8 images of shape (N, H, W, C), "
                        f"got dtype {images.dtype} and shape {images.shape}")
    if not callable(transform):
        raise TypeError(f"apply_to_images: transform must be callable, got {type(transform).__name__}")
    if isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ValueError(f"apply_to_images: chunk_size must be an int >= 1, got {chunk_size!r}")
    out = np.empty(images.shape, dtype=np.float32)
    with progress_bar(total=len(images), desc=desc, unit=" images", enabled=progress, leave=False) as bar:
        for start in range(0, len(images), chunk_size):
            chunk = to_float(backends.to_backend(images[start:start + chunk_size], backend))
            result = backends.to_numpy(transform(chunk))
            if result.shape != chunk.shape:
                raise ValueError(f"apply_to_images: the transform changed the shape of the images "
                                 f"from {tuple(chunk.shape)} to {result.shape}")
            out[start:start + len(chunk)] = result
            bar.update(len(chunk))
    return out


def _check_images(x, caller: str) -> None:
    if x.ndim != 4:
        raise ValueError(f"{caller}: expected float images of shape (N, H, W, C), got shape {tuple(x.shape)}")
    if x.dtype.kind != "f":
        raise TypeError(f"{caller}: expected float images (use minidl.data.to_float on uint8 images), "
                        f"got dtype {x.dtype}")


class Transform:
    """The common interface: ``fit(train_x) -> self``, ``transform(x) = self(x)``, and the state.

    Subclasses list the names of their fitted arrays in ``fitted_names`` and of their
    hyperparameters (floats, ints, bools) in ``option_names``; ``state_dict`` holds both.
    """

    fitted_names: tuple = ()
    option_names: tuple = ()

    def fit(self, x) -> "Transform":
        """Compute the statistics from training images x (N, H, W, C); returns self."""
        return self

    def __call__(self, x):
        raise NotImplementedError

    def _forget_device_copies(self) -> None:
        self._device_copies = {}

    def _fitted(self, name: str, xp):
        """The fitted array ``name`` as an array of module ``xp`` (copied to the GPU once, then reused)."""
        copies = self.__dict__.setdefault("_device_copies", {})
        key = (name, xp.__name__)
        if key not in copies:
            copies[key] = xp.asarray(getattr(self, name))
        return copies[key]

    def _check_fitted(self) -> None:
        for name in self.fitted_names:
            if getattr(self, name, None) is None:
                raise RuntimeError(f"{type(self).__name__}: not fitted yet; call fit(training_images) first "
                                   "(or load_state_dict)")

    def state_dict(self) -> dict:
        """{name: numpy array or number}: everything needed to rebuild this fitted transform."""
        state = {name: getattr(self, name) for name in self.option_names}
        state.update({name: getattr(self, name) for name in self.fitted_names})
        return state

    def load_state_dict(self, state: dict) -> None:
        missing = [name for name in self.option_names + self.fitted_names if name not in state]
        if missing:
            raise KeyError(f"{type(self).__name__}.load_state_dict: the state lacks {missing}; "
                           f"got keys {sorted(state)}")
        for name in self.option_names:
            setattr(self, name, state[name])
        for name in self.fitted_names:
            setattr(self, name, None if state[name] is None else np.asarray(state[name]))
        self._forget_device_copies()

    def __repr__(self) -> str:
        options = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.option_names)
        return f"{type(self).__name__}({options})"


class Standardize(Transform):
    """Per-channel standardisation: x' = (x - mean[c]) / std[c].

    mean, std: float32 (C,), over all training images and pixel positions.
    eps: a lower bound for std, so a constant channel does not divide by zero.
    """

    fitted_names = ("mean", "std")
    option_names = ("eps",)

    def __init__(self, eps: float = 1e-6):
        self.eps = float(eps)
        self.mean = self.std = None

    def fit(self, x, batch_size: int = 4096) -> "Standardize":
        """Mean and std per channel of x (N, H, W, C): two passes over blocks of images, summed in float64."""
        _check_images(x, "Standardize.fit")
        xp = backends.get_array_module(x)
        channels = x.shape[3]
        pixels = x.reshape(-1, channels)                 # every pixel of every image: a row of C values
        rows_per_block = batch_size * x.shape[1] * x.shape[2]
        starts = range(0, len(pixels), rows_per_block)
        total = xp.zeros(channels, dtype=xp.float64)
        for start in starts:
            total += pixels[start:start + rows_per_block].sum(axis=0, dtype=xp.float64)
        mean = total / len(pixels)
        squares = xp.zeros(channels, dtype=xp.float64)
        for start in starts:                             # second pass: squared deviations from the mean
            deviation = pixels[start:start + rows_per_block] - mean.astype(x.dtype)
            squares += (deviation * deviation).sum(axis=0, dtype=xp.float64)
        std = xp.sqrt(squares / len(pixels))
        self.mean = backends.to_numpy(mean).astype(np.float32)
        self.std = np.maximum(backends.to_numpy(std), self.eps).astype(np.float32)
        self._forget_device_copies()
        return self

    def __call__(self, x):
        self._check_fitted()
        _check_images(x, "Standardize")
        if x.shape[3] != len(self.mean):
            raise ValueError(f"Standardize: fitted on {len(self.mean)} channels, got images of shape {tuple(x.shape)}")
        xp = backends.get_array_module(x)
        return (x - self._fitted("mean", xp)) / self._fitted("std", xp)


class GlobalContrastNormalize(Transform):
    """Global contrast normalisation, image by image (nothing to fit).

    For each image x (all H*W*C values together), with c = x - mean(x):

        x' = scale * c / max(eps, sqrt(sqrt_bias + sum(c^2)))     (use_std=False: by the L2 norm)
        x' = scale * c / max(eps, sqrt(sqrt_bias + mean(c^2)))    (use_std=True:  by the std)

    So every image gets mean 0 and L2 norm ``scale`` (or standard deviation ``scale``).
    The defaults follow Goodfellow et al.'s CIFAR-10 preprocessing (pylearn2's
    ``GlobalContrastNormalization(scale=55.)``): for 32x32x3 images a norm of 55 means a
    standard deviation of 55 / sqrt(3072), about 1 per pixel.
    """

    option_names = ("scale", "sqrt_bias", "use_std", "eps")

    def __init__(self, scale: float = 55.0, sqrt_bias: float = 0.0, use_std: bool = False, eps: float = 1e-8):
        if scale <= 0:
            raise ValueError(f"GlobalContrastNormalize: scale must be positive, got {scale}")
        self.scale, self.sqrt_bias, self.use_std, self.eps = float(scale), float(sqrt_bias), bool(use_std), float(eps)

    def __call__(self, x):
        _check_images(x, "GlobalContrastNormalize")
        xp = backends.get_array_module(x)
        per_image = (1, 2, 3)
        # the mean accumulated in float64 is exact for a flat image, whose centred values are then exactly 0
        # (a float32 mean leaves rounding residue that the division would blow up to the full scale)
        centered = x - x.mean(axis=per_image, keepdims=True, dtype=xp.float64).astype(x.dtype)
        squares = centered * centered
        spread = squares.mean(axis=per_image, keepdims=True) if self.use_std else squares.sum(axis=per_image, keepdims=True)
        divisor = xp.maximum(xp.sqrt(spread + x.dtype.type(self.sqrt_bias)), x.dtype.type(self.eps))   # (N, 1, 1, 1)
        centered *= x.dtype.type(self.scale) / divisor     # in place: one image-sized array fewer to allocate
        return centered


class ZCAWhitening(Transform):
    """ZCA whitening of flattened images: x' = (x - mean) @ W, W = U diag(1 / sqrt(S + eps)) U^T.

    mean:   float32 (D,), D = H * W * C, the mean training image
    whiten: float32 (D, D), the symmetric whitening matrix W
    eps:    added to the eigenvalues S of the covariance: it bounds the gain 1/sqrt(S + eps) given
            to the weakest directions (mostly noise), so larger eps means gentler whitening.
    batch_size: images per block, in fit and in __call__, to bound memory.

    Fitting computes the covariance in float64, block by block: cov = sum_blocks B^T B / N with
    B the centred block (batch_size, D). For CIFAR-10 (N = 50,000, D = 3,072) that is 0.9 TFLOP
    and a 3072x3072 eigendecomposition: tens of seconds on a CPU.
    """

    fitted_names = ("mean", "whiten")
    option_names = ("eps",)

    def __init__(self, eps: float = 1e-2, batch_size: int = 4096, progress: bool = True):
        if eps < 0:
            raise ValueError(f"ZCAWhitening: eps must be >= 0, got {eps}")
        self.eps, self.batch_size, self.progress = float(eps), int(batch_size), progress
        self.mean = self.whiten = None

    def fit(self, x) -> "ZCAWhitening":
        _check_images(x, "ZCAWhitening.fit")
        xp = backends.get_array_module(x)
        flat = x.reshape(len(x), -1)                      # (N, D)
        count, dims = flat.shape
        if count < 2:
            raise ValueError(f"ZCAWhitening.fit: needs at least 2 images, got {count}")
        starts = range(0, count, self.batch_size)
        mean = xp.zeros(dims, dtype=xp.float64)
        for start in starts:
            mean += flat[start:start + self.batch_size].sum(axis=0, dtype=xp.float64)
        mean /= count
        covariance = xp.zeros((dims, dims), dtype=xp.float64)
        with progress_bar(total=len(starts) + 1, desc="ZCA: covariance", enabled=self.progress, leave=False) as bar:
            for start in starts:
                block = flat[start:start + self.batch_size].astype(xp.float64) - mean
                covariance += block.T @ block
                bar.update(1)
            covariance /= count
            bar.set_description(f"ZCA: eigendecomposition of {dims}x{dims}")
            eigenvalues, eigenvectors = xp.linalg.eigh(covariance)      # covariance = U diag(S) U^T
            bar.update(1)
        eigenvalues = xp.maximum(eigenvalues, 0.0)       # tiny negative values are rounding errors
        whiten = (eigenvectors / xp.sqrt(eigenvalues + self.eps)) @ eigenvectors.T   # U diag(1/sqrt(S+eps)) U^T
        self.mean = backends.to_numpy(mean).astype(np.float32)
        self.whiten = backends.to_numpy(whiten).astype(np.float32)
        self._forget_device_copies()
        return self

    def __call__(self, x):
        self._check_fitted()
        _check_images(x, "ZCAWhitening")
        if x[0].size != len(self.mean):
            raise ValueError(f"ZCAWhitening: fitted on images of {len(self.mean)} values, got images of shape "
                             f"{tuple(x.shape[1:])} ({x[0].size} values)")
        xp = backends.get_array_module(x)
        mean, whiten = self._fitted("mean", xp), self._fitted("whiten", xp)
        flat = x.reshape(len(x), -1)
        out = xp.empty(flat.shape, dtype=xp.float32)
        for start in range(0, len(flat), self.batch_size):
            out[start:start + self.batch_size] = (flat[start:start + self.batch_size] - mean) @ whiten
        return out.reshape(x.shape)


class LocalContrastNormalize(Transform):
    """Local contrast normalisation, image by image and channel by channel (nothing to fit).

    With G the normalised 2-D Gaussian window (``size`` x ``size`` pixels, std ``sigma`` pixels) and
    ``blur(z) = (G * z) / (G * 1)``, the G-weighted mean of z over the window's pixels inside the image:

        v  = x - blur(x)                      subtractive: remove the local mean
        s  = sqrt(blur(v^2))                  the local standard deviation
        x' = v / max(mean(s), s, threshold)   divisive: mean(s) over the pixels of this image and channel

    Dividing by at least mean(s) keeps flat regions (s small) from being blown up into noise.
    The defaults (7x7 window, sigma 2, threshold 1e-4) are those of the pylearn2 code behind the
    maxout paper's SVHN preprocessing. Near the border the window is cut to the image and
    renormalised (the ``/ (G * 1)``), so a constant image maps to zeros; pylearn2 instead padded
    with zeros, which made the border pixels look bright against a dark surround.
    """

    option_names = ("size", "sigma", "threshold")

    def __init__(self, size: int = 7, sigma: float = 2.0, threshold: float = 1e-4):
        if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1 or size % 2 == 0:
            raise ValueError(f"LocalContrastNormalize: size must be an odd int >= 1, got {size!r}")
        if not sigma > 0 or not threshold >= 0:
            raise ValueError(f"LocalContrastNormalize: sigma must be positive and threshold >= 0, "
                             f"got sigma={sigma} and threshold={threshold}")
        self.size, self.sigma, self.threshold = int(size), float(sigma), float(threshold)

    def window(self) -> np.ndarray:
        """The 1-D Gaussian weights g (size,), summing to 1; the 2-D window is G = outer(g, g)."""
        offsets = np.arange(self.size) - self.size // 2
        weights = np.exp(-offsets.astype(np.float64) ** 2 / (2 * self.sigma ** 2))
        return weights / weights.sum()

    def _filter(self, x, weights):
        """G * x with zeros outside the image, for x (N, H, W, C): one 1-D pass down the rows, one along them."""
        xp = backends.get_array_module(x)
        radius = len(weights) // 2
        for axis in (1, 2):                              # G = outer(g, g) is separable
            pad = [(0, 0)] * 4
            pad[axis] = (radius, radius)
            padded = xp.pad(x, pad)
            length = x.shape[axis]
            out = xp.zeros_like(x)
            for offset, weight in enumerate(weights):
                out += x.dtype.type(weight) * xp.take(padded, xp.arange(offset, offset + length), axis=axis)
            x = out
        return x

    def __call__(self, x):
        _check_images(x, "LocalContrastNormalize")
        xp = backends.get_array_module(x)
        weights = self.window()
        coverage = self._filter(xp.ones((1,) + tuple(x.shape[1:3]) + (1,), dtype=x.dtype), weights)  # G * 1
        centered = x - self._filter(x, weights) / coverage
        spread = xp.sqrt(xp.maximum(self._filter(centered * centered, weights) / coverage, 0))
        divisor = xp.maximum(spread, spread.mean(axis=(1, 2), keepdims=True))          # (N, H, W, C)
        return centered / xp.maximum(divisor, x.dtype.type(self.threshold))


class Compose(Transform):
    """Apply transforms one after the other; ``fit`` fits each on the output of those before it."""

    def __init__(self, transforms):
        self.transforms = list(transforms)

    def fit(self, x, batch_size: int = 4096) -> "Compose":
        for position, transform in enumerate(self.transforms):
            transform.fit(x)
            if position < len(self.transforms) - 1:      # the next one is fitted on this one's output
                xp = backends.get_array_module(x)
                x = xp.concatenate([transform(x[start:start + batch_size])
                                    for start in range(0, len(x), batch_size)])
        return self

    def __call__(self, x):
        for transform in self.transforms:
            x = transform(x)
        return x

    def state_dict(self) -> dict:
        return {str(position): transform.state_dict() for position, transform in enumerate(self.transforms)}

    def load_state_dict(self, state: dict) -> None:
        if sorted(state) != sorted(str(position) for position in range(len(self.transforms))):
            raise KeyError(f"Compose.load_state_dict: expected the states of {len(self.transforms)} transforms "
                           f"(keys '0'..'{len(self.transforms) - 1}'), got keys {sorted(state)}")
        for position, transform in enumerate(self.transforms):
            transform.load_state_dict(state[str(position)])

    def __repr__(self) -> str:
        return f"Compose([{', '.join(map(repr, self.transforms))}])"
