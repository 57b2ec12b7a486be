"""The hooks :func:`minidl.train.fit` calls when it trains on several ranks.

:func:`minidl.train.fit` (``distributed=DataParallelTraining(...)``) stays one loop for one
process and for N; at a few points it hands over to this object:

* the epoch's order: drawn by rank 0, broadcast (:meth:`broadcast_order`);
* each global batch: this rank's slice (:meth:`trim_batches`, :meth:`local_part`, sharding.py);
* after backward: the gradients are averaged (by the DistributedDataParallel wrapper, :attr:`ddp`);
* after each step: the ranks agree whether to stop (a Ctrl-C or SIGTERM reaches the ranks at
  slightly different moments, so they take the largest flag: all stop after the same step), and
  every ``checksum_every`` steps they check that they still hold the same weights (replicas.py);
* the running loss and counts: summed over the ranks (:meth:`sum_counts`);
* evaluation: sharded, buffers from rank 0 first (:meth:`evaluation_batches`, :meth:`before_evaluation`);
* checkpoints: rank 0 writes them, with every rank's random state (:meth:`state_dict`); a resumed
  job reads them on rank 0 and broadcasts them (:meth:`broadcast_object`), so ``--out`` need only
  be on rank 0's machine.

Random streams: rank 0 keeps the stream of ``--seed`` (so its draws are those of a one-process
run), rank r > 0 gets an independent stream derived from (seed, r) (:func:`seed_ranks`): its
dropout masks and augmentations differ from the other ranks', as they would for other images.
"""
from __future__ import annotations

import numpy as np

from .. import random as mrandom
from .data_parallel import DistributedDataParallel, broadcast_parameters
from .process_group import get_communicator
from .replicas import check_replicas_agree
from .sharding import check_global_batch, evaluation_shard, local_part, trim_batches


def rank_seed(seed: int, rank: int) -> int:
    """The seed of rank ``rank``'s random stream: ``seed`` itself on rank 0, else one derived from (seed, rank)."""
    if rank == 0:
        return int(seed)
    return int(np.random.SeedSequence([int(seed), int(rank)]).generate_state(1, np.uint64)[0] >> np.uint64(1))


def seed_ranks(seed: int, communicator=None) -> None:
    """``minidl.manual_seed`` with this rank's seed (:func:`rank_seed`)."""
    communicator = get_communicator() if communicator is None else communicator
    mrandom.manual_seed(rank_seed(seed, communicator.rank))


def check_same_world(state: dict | None, world_size: int) -> None:
    """Refuse to resume a checkpoint (its "distributed" entry: ``state``) written by another number of ranks.

    Each rank's random stream is in the checkpoint and the epoch in progress is cut into N shards:
    another N cannot continue it exactly.
    """
    saved = 1 if state is None else int(state["world_size"])
    if saved != world_size:
        how = f"mpiexec -n {saved}" if saved > 1 else "a single process (no mpiexec)"
        raise ValueError(f"--resume: the checkpoint was written by a job of {saved} rank(s), this one has "
                         f"{world_size}; resume with {how}, or start a new --out")


class DataParallelTraining:
    """What :func:`minidl.train.fit` needs to train ``model`` on every rank of ``communicator``.

    compression:    None, "bf16" or "fp16" for the gradient all-reduce
    checksum_every: compare the ranks' weights every this many steps (and before every evaluation)
    batch_size:     the global training batch, checked to be a multiple of the world size
    """

    def __init__(self, model, communicator=None, compression: str | None = None, checksum_every: int = 100,
                 batch_size: int | None = None):
        self.communicator = get_communicator() if communicator is None else communicator
        self.rank, self.world_size = self.communicator.rank, self.communicator.size
        if batch_size is not None:
            check_global_batch(batch_size, self.world_size)
        self.model = model
        self.ddp = DistributedDataParallel(model, self.communicator, compression=compression)
        self.checksum_every = int(checksum_every)
        self.steps = 0

    # -- data ------------------------------------------------------------------------
    def broadcast_order(self, order):
        """Rank 0's epoch order on every rank."""
        order = np.ascontiguousarray(order, dtype=np.int64)
        return self.communicator.broadcast(order, 0)

    def trim_batches(self, batches) -> list:
        return trim_batches(batches, self.world_size)

    def local_part(self, batch):
        return local_part(batch, self.rank, self.world_size)

    def evaluation_batches(self, loader):
        """(x, y) batches of this rank's slice of ``loader``'s data set (in the stored order)."""
        for indices in loader.batches(evaluation_shard(len(loader.dataset), self.rank, self.world_size)):
            yield loader.load(indices)

    # -- agreement ---------------------------------------------------------------------
    def any(self, flag: bool) -> bool:
        """True on every rank if ``flag`` is True on any (collective)."""
        value = np.array([1 if flag else 0], dtype=np.int64)
        return bool(self.communicator.all_reduce(value, "max")[0])

    def sum_counts(self, loss_sum: float, *counts: int) -> tuple:
        """(loss_sum, *counts) summed over the ranks: the loss in float64, the counts as exact integers."""
        loss = self.communicator.all_reduce(np.array([loss_sum], dtype=np.float64), "sum")
        totals = self.communicator.all_reduce(np.array(counts, dtype=np.int64), "sum")
        return (float(loss[0]), *(int(t) for t in totals))

    def after_step(self, stopping: bool) -> bool:
        """Called after every optimizer step: the agreed stop flag; now and then, the weight check."""
        self.steps += 1
        if self.checksum_every and self.steps % self.checksum_every == 0:
            check_replicas_agree(self.model, self.communicator, where=f"after step {self.steps} of this run")
        return self.any(stopping)

    def before_evaluation(self, where: str = "") -> None:
        """Rank 0's buffers (per-rank batch-norm statistics) everywhere, then the weight check."""
        for _, buffer in self.model.named_buffers():
            self.communicator.broadcast(buffer, 0)
        check_replicas_agree(self.model, self.communicator, where=where)

    # -- checkpoints -------------------------------------------------------------------
    def broadcast_object(self, obj):
        return self.communicator.broadcast_object(obj, 0)

    def state_dict(self) -> dict:
        """{"world_size", "random": every rank's random state} on rank 0 (collective; None elsewhere)."""
        states = self.communicator.gather_object(mrandom.get_state(), 0)
        return {"world_size": self.world_size, "random": states} if self.rank == 0 else None

    def load_state_dict(self, state: dict | None) -> None:
        """Restore this rank's random state; refuse a checkpoint of another number of ranks."""
        check_same_world(state, self.world_size)
        if state is not None:
            mrandom.set_state(state["random"][self.rank])

    def broadcast_parameters(self) -> None:
        broadcast_parameters(self.model, 0, self.communicator)


def start_job(backend: str, batch_size: int | None = None):
    """The default communicator of a training script (``backend``: minidl's array backend, resolved).

    Started by mpiexec with the CuPy backend, this process first takes the GPU of its local rank.
    A ``--batch-size`` that does not split over the ranks is refused here, on every rank alike
    (one line on rank 0's stderr, exit status 2).
    """
    import sys
    from . import launch
    from .process_group import init, use_local_gpu
    if backend == "cupy" and launch.launched_by_mpi():
        use_local_gpu()
    communicator = init()
    if batch_size is not None and communicator.size > 1:
        try:
            check_global_batch(batch_size, communicator.size)
        except ValueError as exc:
            if communicator.rank == 0:
                print(f"error: {exc}", file=sys.stderr)
            raise SystemExit(2) from None
    return communicator


def rank_zero_first(communicator, load):
    """``load()`` on rank 0, then on the other ranks: a download or a decoded-data cache is made once."""
    if communicator.size == 1:
        return load()
    result = load() if communicator.rank == 0 else None
    communicator.barrier()
    return result if communicator.rank == 0 else load()
