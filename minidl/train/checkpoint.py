"""Checkpoints: the whole state of a training run, written atomically, in a file that runs no code.

A checkpoint is one ``checkpoint.safetensors`` file written by :func:`minidl.save`
(:mod:`minidl.serialization`): the arrays (weights, optimizer buffers, the epoch's shuffled order,
the fitted preprocessing) as safetensors tensors, everything else (config, schedule, random
generator states, counters) as JSON in its header. GPU arrays are copied to the host, so it loads on
any machine, with or without a GPU. It is written to a temporary file in the same folder, flushed to
disk, and only then renamed over the old one: ``os.replace`` is atomic, so a crash or Ctrl-C at any
moment leaves either the old checkpoint or the new one, never half of one.

Checkpoints written before 2026-12-02 were pickles (``checkpoint.pkl``). Loading a pickle runs
whatever code it holds, so they are refused with a message naming the one-time converter,
``python -m minidl.convert_checkpoint OLD --trusted`` (:mod:`minidl.convert_checkpoint`).
"""
from __future__ import annotations

import os

from .. import serialization

#: 1: a pickle (until 2026-12-01); 2: minidl.save's safetensors file
FORMAT_VERSION = 2
CHECKPOINT_NAME = "checkpoint.safetensors"
LEGACY_NAME = "checkpoint.pkl"


class CheckpointError(ValueError):
    """A file that is not a checkpoint this minidl can open; the message is one line, for the command line."""


def converter_command(path) -> str:
    return f"python -m minidl.convert_checkpoint {os.fspath(path)} --trusted"


def save_checkpoint(path, state: dict) -> None:
    """Write ``state`` to ``path`` atomically (temporary file, fsync, rename) with :func:`minidl.save`."""
    serialization.save({"format_version": FORMAT_VERSION, **state}, path, name="checkpoint")


def load_checkpoint(path) -> dict:
    """Read a checkpoint written by :func:`save_checkpoint`; arrays come back as NumPy arrays.

    Raises FileNotFoundError for a missing file and :class:`CheckpointError` (a ValueError) for an old
    pickle checkpoint, a damaged or truncated file, or any other kind of file.
    """
    path = os.fspath(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"load_checkpoint: no checkpoint at {path}")
    if serialization.looks_like_pickle(path):
        raise CheckpointError(
            f"{path} is a checkpoint in the old pickle format, which minidl no longer opens because loading a "
            f"pickle runs whatever code it holds; if you trust the file, convert it once: {converter_command(path)}")
    try:
        state = serialization.load(path, map_location="numpy")
    except serialization.SerializationError as exc:
        raise CheckpointError(f"load_checkpoint: {path} is not a readable minidl checkpoint ({exc})") from None
    if not isinstance(state, dict) or state.get("format_version") != FORMAT_VERSION:
        found = state.get("format_version") if isinstance(state, dict) else type(state).__name__
        raise CheckpointError(f"load_checkpoint: {path} is not a minidl checkpoint of format {FORMAT_VERSION} "
                              f"(format_version: {found!r})")
    return state


def resumable_checkpoint(out_dir) -> str | None:
    """The checkpoint to resume from in ``out_dir``, or None when there is none yet.

    A folder holding only an old ``checkpoint.pkl`` raises :class:`CheckpointError` (naming the
    converter) rather than silently starting again from scratch.
    """
    path = os.path.join(os.fspath(out_dir), CHECKPOINT_NAME)
    if os.path.exists(path):
        return path
    legacy = os.path.join(os.fspath(out_dir), LEGACY_NAME)
    if os.path.exists(legacy):
        load_checkpoint(legacy)        # raises the old-format message
    return None
