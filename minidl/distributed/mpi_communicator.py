"""`MPICommunicator`: collectives through MPI (mpi4py), on host arrays.

NumPy arrays are handed to MPI as they are (``Allreduce`` in place on their memory). CuPy
arrays go through host memory: copied to the host, reduced there, copied back; that works
everywhere but costs two PCIe copies, so it is the fallback when NCCL is missing (a warning
says so once). ``mpi4py`` is imported only when this class is built: importing it starts MPI.

Compression (bf16, fp16) sends 16-bit numbers: MPI has no 16-bit float sum, so the sum is a
user-defined MPI operation (``MPI.Op.Create``) that adds two 16-bit buffers in float32 and
rounds the result back (:func:`minidl.distributed.compression.sum_compressed`).
"""
from __future__ import annotations

import sys
import warnings

import numpy as np

from .. import backends
from .communicator import Communicator, check_op, check_root
from .compression import check_compression, compress, decompress, sum_compressed


class MPICommunicator(Communicator):
    """MPI collectives on NumPy arrays (CuPy arrays through host memory). ``comm``: default COMM_WORLD."""

    name = "mpi"

    def __init__(self, comm=None):
        from mpi4py import MPI
        self.MPI = MPI
        self.comm = MPI.COMM_WORLD if comm is None else comm
        self.rank, self.size = self.comm.Get_rank(), self.comm.Get_size()
        self._ops = {"sum": MPI.SUM, "mean": MPI.SUM, "max": MPI.MAX, "min": MPI.MIN}
        self._compressed_sum = {}           # compression -> MPI.Op, made on first use
        self._warned_host_copy = False

    # -- arrays --------------------------------------------------------------------
    def _host_buffer(self, array, caller):
        """(a C-contiguous host array to reduce in place, whether it must be copied back)."""
        if backends.is_cupy_array(array):
            if not self._warned_host_copy:
                warnings.warn(f"{caller}: CuPy arrays go through host memory with MPI (NCCL is not in use); "
                              "install the nvidia-nccl wheel of your CUDA version for GPU collectives",
                              RuntimeWarning, stacklevel=3)
                self._warned_host_copy = True
            return array.get(), True
        if not isinstance(array, np.ndarray):
            raise TypeError(f"{caller}: expected a NumPy or CuPy array, got {type(array).__name__}")
        if not array.flags.c_contiguous:
            return np.ascontiguousarray(array), True
        return array, False

    @staticmethod
    def _write_back(array, host):
        """Copy the reduced host buffer back into ``array`` (a CuPy array, or a non-contiguous NumPy one)."""
        if backends.is_cupy_array(array):
            array[...] = backends.to_backend(host, "cupy")
        else:
            array[...] = host

    def all_reduce(self, array, op: str = "sum", compression: str | None = None):
        """Reduce ``array`` in place over every rank; returns it. ``compression``: None, "bf16", "fp16" (sum/mean)."""
        check_op(op, "all_reduce")
        check_compression(compression, "all_reduce")
        host, copy_back = self._host_buffer(array, "all_reduce")
        if op == "mean" and host.dtype.kind != "f":
            raise ValueError(f"all_reduce: op 'mean' needs a floating array, got {host.dtype} (use 'sum')")
        if compression is not None:
            if op not in ("sum", "mean") or host.dtype != np.float32:
                raise ValueError(f"all_reduce: compression applies to sum/mean of float32 arrays, "
                                 f"got op {op!r} on {host.dtype}")
            packed = compress(host, compression)
            self.comm.Allreduce(self.MPI.IN_PLACE, packed, op=self._compressed_op(compression))
            host[...] = decompress(packed, compression).reshape(host.shape)
        else:
            self.comm.Allreduce(self.MPI.IN_PLACE, host, op=self._ops[op])
        if op == "mean":
            host /= host.dtype.type(self.size)
        if copy_back:
            self._write_back(array, host)
        return array

    def _compressed_op(self, compression):
        if compression not in self._compressed_sum:
            dtype = np.uint16 if compression == "bf16" else np.float16

            def add_16_bit(inbuf, inoutbuf, datatype):
                a = np.frombuffer(inbuf, dtype=dtype)
                b = np.frombuffer(inoutbuf, dtype=dtype)
                b[...] = sum_compressed(a, b, compression)
            self._compressed_sum[compression] = self.MPI.Op.Create(add_16_bit, commute=True)
        return self._compressed_sum[compression]

    def broadcast(self, array, root: int = 0):
        """``array`` becomes rank ``root``'s, in place, on every rank; returns it."""
        check_root(root, self.size, "broadcast")
        host, copy_back = self._host_buffer(array, "broadcast")
        self.comm.Bcast(host, root=root)
        if copy_back:
            self._write_back(array, host)
        return array

    # -- the rest ------------------------------------------------------------------
    def barrier(self) -> None:
        self.comm.Barrier()

    def broadcast_object(self, obj, root: int = 0):
        check_root(root, self.size, "broadcast_object")
        return self.comm.bcast(obj, root=root)

    def gather_object(self, obj, root: int = 0):
        check_root(root, self.size, "gather_object")
        return self.comm.gather(obj, root=root)

    def abort(self, code: int = 1) -> None:
        sys.stdout.flush()
        sys.stderr.flush()
        self.comm.Abort(code)
