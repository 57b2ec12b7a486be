"""Which images each rank takes: disjoint shards of the same global order.

Training: every rank draws the same shuffled order of the data set (rank 0 draws it and
broadcasts it) and cuts it into the same global batches of ``--batch-size`` images; rank r
takes the r-th of N equal consecutive slices of each batch. The shards of an epoch therefore
partition its images, every rank runs the same number of steps, and the averaged gradient is
that of the global batch (data_parallel.py). A global batch must split into N equal parts:
``--batch-size`` must be a multiple of N; of the epoch's last, shorter batch the first
``N * (len // N)`` images are used and the remaining ``len % N`` (fewer than N) are left out
for that epoch (a different few each epoch; none when N divides the data set's size).

Evaluation: every rank evaluates one of N consecutive slices of the test set (sizes may differ
by one); the loss sums and the integer counts are summed over the ranks, so every test image is
counted exactly once and the accuracy is the one-process accuracy.
"""
from __future__ import annotations

import numpy as np


def check_global_batch(batch_size: int, world_size: int) -> None:
    if batch_size % world_size:
        raise ValueError(f"--batch-size {batch_size} is the global batch, split over {world_size} ranks: "
                         f"it must be a multiple of {world_size} (e.g. {world_size * max(1, batch_size // world_size)})")


def trim_batches(batches, world_size: int) -> list:
    """The global batches with each one's length cut to a multiple of ``world_size`` (empty ones dropped)."""
    trimmed = [b[:len(b) - len(b) % world_size] for b in batches]
    return [b for b in trimmed if len(b)]


def local_part(batch, rank: int, world_size: int):
    """Rank ``rank``'s slice of a global batch whose length is a multiple of ``world_size``."""
    share = len(batch) // world_size
    return batch[rank * share:(rank + 1) * share]


def evaluation_shard(count: int, rank: int, world_size: int) -> np.ndarray:
    """Rank ``rank``'s consecutive slice of 0..count-1 (the N slices partition it; sizes differ by at most one)."""
    return np.array_split(np.arange(count), world_size)[rank]
