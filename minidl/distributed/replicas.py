"""Do the ranks still hold the same weights? A cheap checksum reduction.

Data parallelism keeps the copies equal only if every rank applies the same update to the same
weights. A bug (a rank that skipped a step, a non-deterministic kernel, a bit flip) would let
them drift apart silently, each rank training its own model. The check: every rank computes,
per parameter, sum(w) and sum(w^2) in float64 (one pass over the weights, about a millisecond for
NIN on a CPU); two all-reduces (max and min) of these 2P numbers tell whether all ranks agree
*bit for bit* (equal weights give equal sums: the same numbers summed in the same order).
"""
from __future__ import annotations

import numpy as np

from ..backends import get_array_module, to_numpy


class ReplicasDiverged(RuntimeError):
    """The ranks hold different weights."""


def weight_checksums(module):
    """(names, float64 array (2, P)): sum(w) and sum(w^2) of every parameter, on the parameters' backend."""
    named = list(module.named_parameters())
    if not named:
        return [], np.zeros((2, 0))
    xp = get_array_module(named[0][1].data)
    sums = xp.empty((2, len(named)), dtype=np.float64)
    for i, (_, p) in enumerate(named):
        w = p.data.astype(np.float64, copy=False)
        sums[0, i] = w.sum()
        sums[1, i] = (w * w).sum()
    return [name for name, _ in named], sums


def check_replicas_agree(module, communicator, where: str = "") -> None:
    """Raise :class:`ReplicasDiverged` on every rank if any two ranks' parameters differ (collective)."""
    if communicator.size == 1:
        return
    names, sums = weight_checksums(module)
    high, low = sums.copy(), sums.copy()
    communicator.all_reduce(high, "max")
    communicator.all_reduce(low, "min")
    high, low = to_numpy(high), to_numpy(low)
    differ = np.flatnonzero(np.any(high != low, axis=0))
    if differ.size:
        first = differ[0]
        raise ReplicasDiverged(
            f"the {communicator.size} ranks no longer hold the same weights{' ' + where if where else ''}: "
            f"{differ.size} of {len(names)} parameters differ, first {names[first]} "
            f"(sum of weights from {float(low[0, first])!r} to {float(high[0, first])!r} across ranks). "
            "Every rank must apply the same update: a rank that skipped a step or a non-deterministic kernel "
            "does this; the last checkpoint is kept")
