"""Data-parallel training over processes, GPUs and machines, on MPI and NCCL.

Start a training script with an MPI launcher and it trains on every process it starts::

    mpiexec -n 2 python examples/train_nin_cifar10.py --quick      # 2 ranks on one machine

Each rank takes its part of every global batch, the gradients are averaged over the ranks after
backward, and every rank applies the same update (data_parallel.py). The pieces, one per file:

* launch.py:            was this process started by mpiexec? its rank and local rank (no MPI needed)
* communicator.py:      the collectives (all_reduce, broadcast, barrier); the world of one process
* mpi_communicator.py:  the same on MPI (mpi4py), host arrays
* nccl_communicator.py: the same on NCCL (cupy.cuda.nccl), GPU arrays
* process_group.py:     init(), get_rank(), get_world_size(), all_reduce(), broadcast(), barrier()
* data_parallel.py:     DistributedDataParallel (flat buckets), broadcast_parameters()
* compression.py:       bf16 / fp16 gradients for the reduction
* sync_batchnorm.py:    SyncBatchNorm: batch norm with the global batch's statistics
* sharding.py:          which images each rank takes
* replicas.py:          the weight checksum across ranks
* faults.py:            one rank's error ends the whole job
* training.py:          the hooks minidl.train.fit calls on N ranks

Started alone (no launcher), ``init()`` makes the world of one process without importing mpi4py.
"""
from .communicator import Communicator, SingleProcessCommunicator
from .compression import bfloat16_to_float32, float32_to_bfloat16
from .data_parallel import DistributedDataParallel, broadcast_parameters
from .faults import abort_on_error, install_excepthook
from .launch import launched_by_mpi, local_rank
from .process_group import (all_reduce, barrier, broadcast, get_communicator, get_rank, get_world_size, init,
                            is_initialized, use_local_gpu)
from .replicas import ReplicasDiverged, check_replicas_agree
from .sync_batchnorm import SyncBatchNorm, convert_sync_batchnorm
from .training import DataParallelTraining, rank_seed, seed_ranks

__all__ = ["init", "is_initialized", "get_rank", "get_world_size", "barrier", "all_reduce", "broadcast",
           "get_communicator", "use_local_gpu", "launched_by_mpi", "local_rank", "Communicator",
           "SingleProcessCommunicator", "DistributedDataParallel", "broadcast_parameters", "SyncBatchNorm",
           "convert_sync_batchnorm", "float32_to_bfloat16", "bfloat16_to_float32", "ReplicasDiverged",
           "check_replicas_agree", "abort_on_error", "install_excepthook", "DataParallelTraining",
           "rank_seed", "seed_ranks"]
