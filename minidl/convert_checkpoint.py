"""Convert a checkpoint of the old pickle format (``checkpoint.pkl``, before 2026-12-02) once.

    python -m minidl.convert_checkpoint runs/nin-cifar10/checkpoint.pkl --trusted

writes ``runs/nin-cifar10/checkpoint.safetensors`` beside it (or ``--out PATH``), which ``--resume``,
``--export`` and ``restore_run`` then read. **Converting unpickles the old file, and unpickling runs
whatever code the file holds**: convert only a file you made yourself or got from someone you trust.
That is what ``--trusted`` says; without it nothing is read. The new file runs no code when loaded.
A training run's config of that time does not say its data set (``--dataset`` came later): the
converter writes it in from the first convolution's input channels (1: MNIST, 3: CIFAR-10), so an
MNIST run resumes with ``train_nin_mnist.py --resume`` like a CIFAR-10 one.
"""
from __future__ import annotations

import argparse
import os
import pickle
import sys

from .serialization import looks_like_pickle
from .train.checkpoint import CHECKPOINT_NAME, save_checkpoint

OLD_FORMAT_VERSION = 1


def convert(old_path, new_path) -> dict:
    """Unpickle ``old_path`` (this runs its code: trusted files only) and save it as ``new_path``."""
    with open(old_path, "rb") as f:
        state = pickle.load(f)
    if not isinstance(state, dict) or state.get("format_version") != OLD_FORMAT_VERSION:
        raise ValueError(f"{old_path} is a pickle but not a minidl checkpoint of the old format "
                         f"(format_version {OLD_FORMAT_VERSION})")
    state = {k: v for k, v in state.items() if k != "format_version"}
    config = state.get("config")
    if isinstance(config, dict) and ("init" in config or "init_std" in config) and "dataset" not in config:
        dataset = dataset_of_old_run(state.get("model") or {})
        if dataset is not None:
            state["config"] = {**config, "dataset": dataset}
    save_checkpoint(new_path, state)
    return state


def dataset_of_old_run(model_state: dict) -> str | None:
    """The ``--dataset`` of a training run saved before that option existed, from its weights.

    Only two scripts wrote such runs, train_nin_cifar10.py and train_nin_mnist.py; the first
    convolution's weight (O, C, kh, kw), the first 4-D array of the state_dict, tells them apart:
    C = 1 for MNIST, 3 for CIFAR-10. None when it says neither.
    """
    for array in model_state.values():
        if getattr(array, "ndim", 0) == 4:
            return {1: "mnist", 3: "cifar10"}.get(int(array.shape[1]))
    return None


def main(argv=None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m minidl.convert_checkpoint", allow_abbrev=False,
        description="Convert an old pickle checkpoint (checkpoint.pkl) to checkpoint.safetensors. Converting "
                    "UNPICKLES the old file, which RUNS ANY CODE IT HOLDS: only for files you trust (--trusted).")
    p.add_argument("old", help="the old checkpoint.pkl")
    p.add_argument("--out", default=None, help=f"the new file (default: {CHECKPOINT_NAME} beside the old one)")
    p.add_argument("--trusted", action="store_true",
                   help="I made this file or trust who did: unpickling it may run code it holds")
    args = p.parse_args(argv)
    new = args.out or os.path.join(os.path.dirname(os.path.abspath(args.old)), CHECKPOINT_NAME)

    def fail(message):
        print(f"error: {message}", file=sys.stderr)
        return 2
    if not os.path.isfile(args.old):
        return fail(f"no file at {args.old}")
    if not looks_like_pickle(args.old):
        return fail(f"{args.old} is not a pickle (nothing to convert)")
    if not args.trusted:
        return fail(f"converting {args.old} unpickles it, which runs any code it holds; if you made this file or "
                    "trust who did, run again with --trusted")
    if os.path.exists(new):
        return fail(f"{new} exists already; remove it or choose another --out")
    try:
        convert(args.old, new)
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError) as exc:
        return fail(f"could not convert {args.old}: {exc}")
    print(f"converted {args.old} -> {new}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
