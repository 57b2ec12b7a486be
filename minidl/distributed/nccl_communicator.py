"""`NCCLCommunicator`: collectives on GPU arrays through NVIDIA's NCCL (``cupy.cuda.nccl``).

One process drives one GPU. NCCL needs every rank to start from the same *unique id*: rank 0
makes it (``nccl.get_unique_id()``) and MPI broadcasts it, then each rank joins with
``NcclCommunicator(size, unique_id, rank)`` on its own GPU (chosen before, from the local rank:
:func:`minidl.distributed.use_local_gpu`). MPI stays for what is not an array on the GPU: small
Python objects, the barrier, the abort (ChainerMN's ``PureNcclCommunicator`` is built the same way).

The collectives run on CuPy's current stream, so they are ordered with the kernels before and
after them and nothing has to wait on the host. NumPy arrays go through MPI.

Compression: NCCL sums float16 and (NCCL >= 2.10) bfloat16 natively, so the 16-bit buffer is
reduced as it is; the sum is accumulated in the 16-bit type.

Never run in this project's sessions so far (no GPU was available); see README.
"""
from __future__ import annotations

import numpy as np

from .. import backends
from .communicator import Communicator, check_op, check_root
from .compression import check_compression, compress, decompress
from .mpi_communicator import MPICommunicator


def nccl_available() -> bool:
    """True when CuPy imports with its NCCL bindings (the nvidia-nccl wheel or a system NCCL)."""
    try:
        from cupy.cuda import nccl
    except Exception:       # ImportError, or a CUDA library that fails to load
        return False
    return getattr(nccl, "available", True)


class NCCLCommunicator(Communicator):
    """NCCL collectives on CuPy arrays; ``mpi``: the MPICommunicator of the same processes."""

    name = "nccl"

    def __init__(self, mpi: MPICommunicator | None = None):
        from cupy.cuda import nccl
        self.nccl = nccl
        self.mpi = MPICommunicator() if mpi is None else mpi
        self.rank, self.size = self.mpi.rank, self.mpi.size
        unique_id = nccl.get_unique_id() if self.rank == 0 else None
        unique_id = self.mpi.broadcast_object(unique_id, root=0)
        self.comm = nccl.NcclCommunicator(self.size, unique_id, self.rank)
        self._dtypes = {np.dtype(np.float16): nccl.NCCL_FLOAT16, np.dtype(np.float32): nccl.NCCL_FLOAT32,
                        np.dtype(np.float64): nccl.NCCL_FLOAT64, np.dtype(np.int32): nccl.NCCL_INT32,
                        np.dtype(np.int64): nccl.NCCL_INT64, np.dtype(np.uint8): nccl.NCCL_UINT8}
        if hasattr(nccl, "NCCL_BFLOAT16"):
            self._bfloat16 = nccl.NCCL_BFLOAT16
        else:
            self._bfloat16 = None
        self._ops = {"sum": nccl.NCCL_SUM, "mean": nccl.NCCL_SUM, "max": nccl.NCCL_MAX, "min": nccl.NCCL_MIN}

    def _nccl_dtype(self, array, caller):
        try:
            return self._dtypes[np.dtype(array.dtype)]
        except KeyError:
            raise TypeError(f"{caller}: NCCL cannot reduce dtype {array.dtype}") from None

    @staticmethod
    def _stream():
        import cupy
        return cupy.cuda.get_current_stream().ptr

    def all_reduce(self, array, op: str = "sum", compression: str | None = None):
        """Reduce the CuPy ``array`` in place over every rank (NumPy arrays: through MPI); returns it."""
        check_op(op, "all_reduce")
        check_compression(compression, "all_reduce")
        if not backends.is_cupy_array(array):
            return self.mpi.all_reduce(array, op, compression)
        if op == "mean" and array.dtype.kind != "f":
            raise ValueError(f"all_reduce: op 'mean' needs a floating array, got {array.dtype} (use 'sum')")
        import cupy
        work = array if array.flags.c_contiguous else cupy.ascontiguousarray(array)
        if compression is not None:
            if compression == "bf16" and self._bfloat16 is None:
                raise ValueError("all_reduce: this CuPy/NCCL has no bfloat16 (NCCL 2.10+); use --grad-compression fp16")
            packed = compress(work, compression)
            dtype = self._bfloat16 if compression == "bf16" else self.nccl.NCCL_FLOAT16
            self.comm.allReduce(packed.data.ptr, packed.data.ptr, packed.size, dtype, self._ops[op], self._stream())
            work[...] = decompress(packed, compression).reshape(work.shape)
        else:
            self.comm.allReduce(work.data.ptr, work.data.ptr, work.size, self._nccl_dtype(work, "all_reduce"),
                                self._ops[op], self._stream())
        if op == "mean":
            work /= work.dtype.type(self.size)
        if work is not array:
            array[...] = work
        return array

    def broadcast(self, array, root: int = 0):
        check_root(root, self.size, "broadcast")
        if not backends.is_cupy_array(array):
            return self.mpi.broadcast(array, root)
        import cupy
        work = array if array.flags.c_contiguous else cupy.ascontiguousarray(array)
        self.comm.bcast(work.data.ptr, work.size, self._nccl_dtype(work, "broadcast"), root, self._stream())
        if work is not array:
            array[...] = work
        return array

    def barrier(self) -> None:
        import cupy
        cupy.cuda.get_current_stream().synchronize()      # finish this rank's collectives first
        self.mpi.barrier()

    def broadcast_object(self, obj, root: int = 0):
        return self.mpi.broadcast_object(obj, root)

    def gather_object(self, obj, root: int = 0):
        return self.mpi.gather_object(obj, root)

    def abort(self, code: int = 1) -> None:
        try:
            self.comm.abort()            # unblock this rank's pending NCCL kernels
        finally:
            self.mpi.abort(code)
