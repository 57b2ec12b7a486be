"""`Communicator`: the collectives data-parallel training needs, and the world of one process.

A communicator joins ``size`` processes; each knows its ``rank`` (0 .. size-1). Collectives are
called by every rank, in the same order:

* ``all_reduce(array, op)``: every rank's ``array`` becomes, in place, the element-wise
  ``op`` ("sum", "mean", "max" or "min") of all ranks' arrays;
* ``broadcast(array, root)``: every rank's ``array`` becomes, in place, rank ``root``'s;
* ``barrier()``: wait until every rank is here;
* ``broadcast_object`` / ``gather_object``: small Python values (a checkpoint, random states);
* ``abort(code)``: end every process of the job now (the way out of a failure on one rank).

:class:`SingleProcessCommunicator` is the world of one process: every collective returns its
input unchanged, so code written for N ranks runs as it is in one process, without MPI.
The implementations on MPI and NCCL are in ``mpi_communicator.py`` and ``nccl_communicator.py``
(the design of ChainerMN's communicators).
"""
from __future__ import annotations

import sys

REDUCE_OPS = ("sum", "mean", "max", "min")


def check_op(op: str, caller: str) -> str:
    if op not in REDUCE_OPS:
        raise ValueError(f"{caller}: op must be one of {', '.join(map(repr, REDUCE_OPS))}, got {op!r}")
    return op


def check_root(root: int, size: int, caller: str) -> int:
    if isinstance(root, bool) or not isinstance(root, int) or not 0 <= root < size:
        raise ValueError(f"{caller}: root must be a rank in [0, {size}), got {root!r}")
    return root


class Communicator:
    """The interface (see the module docstring); ``name`` says which engine runs the collectives."""

    name = "abstract"
    rank = 0
    size = 1

    def all_reduce(self, array, op: str = "sum", compression: str | None = None):
        raise NotImplementedError

    def broadcast(self, array, root: int = 0):
        raise NotImplementedError

    def barrier(self) -> None:
        raise NotImplementedError

    def broadcast_object(self, obj, root: int = 0):
        raise NotImplementedError

    def gather_object(self, obj, root: int = 0):
        """A list of every rank's ``obj`` on ``root`` (in rank order); None elsewhere."""
        raise NotImplementedError

    def abort(self, code: int = 1) -> None:
        raise NotImplementedError

    def __repr__(self) -> str:
        return f"{type(self).__name__}(rank={self.rank}, size={self.size})"


class SingleProcessCommunicator(Communicator):
    """The world of one process (not launched by mpiexec): collectives are identities."""

    name = "single"

    def all_reduce(self, array, op: str = "sum", compression: str | None = None):
        check_op(op, "all_reduce")
        return array

    def broadcast(self, array, root: int = 0):
        check_root(root, 1, "broadcast")
        return array

    def barrier(self) -> None:
        pass

    def broadcast_object(self, obj, root: int = 0):
        check_root(root, 1, "broadcast_object")
        return obj

    def gather_object(self, obj, root: int = 0):
        check_root(root, 1, "gather_object")
        return [obj]

    def abort(self, code: int = 1) -> None:
        sys.stderr.flush()
        raise SystemExit(code)
