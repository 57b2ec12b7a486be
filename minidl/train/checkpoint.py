"""Checkpoints: the whole state of a training run, written atomically.

A checkpoint is a pickled dict of plain Python values and NumPy arrays (GPU
arrays are copied to the host first), so it loads on any machine, with or
without a GPU. It is written to a temporary file in the same folder, flushed
to disk, and only then renamed over the old one: ``os.replace`` is atomic, so
a crash or Ctrl-C at any moment leaves either the old checkpoint or the new
one, never half of one.
"""
from __future__ import annotations

import os
import pickle
import tempfile

import numpy as np

from .. import backends

FORMAT_VERSION = 1


def to_host(obj):
    """Copy every CuPy array inside nested dicts/lists/tuples to NumPy."""
    if isinstance(obj, dict):
        return type(obj)((k, to_host(v)) for k, v in obj.items())
    if isinstance(obj, (list, tuple)):
        return type(obj)(to_host(v) for v in obj)
    if backends.is_cupy_array(obj):
        return obj.get()
    if isinstance(obj, np.ndarray):
        return obj.copy()
    return obj


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename)."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    payload = {"format_version": FORMAT_VERSION, **to_host(state)}
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(fd, "wb") as f:
            pickle.dump(payload, f, protocol=pickle.HIGHEST_PROTOCOL)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    try:  # make the rename itself durable
        dir_fd = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError:
        pass


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint` (clear errors for missing/foreign files)."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    with open(path, "rb") as f:
        try:
            state = pickle.load(f)
        except Exception as exc:
            raise ValueError(f"load_checkpoint: {path} is not a readable minidl checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"load_checkpoint: {path} is not a minidl checkpoint of format {FORMAT_VERSION}")
    return state
