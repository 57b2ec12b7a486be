"""The job's default communicator and the functions around it (PyTorch's ``torch.distributed`` names).

``init()`` builds it once: started by an MPI launcher, an :class:`MPICommunicator` (or, with
``backend="nccl"``, an :class:`NCCLCommunicator`); started alone, a
:class:`SingleProcessCommunicator`, without importing mpi4py, so a one-process run is exactly
what it was before this package existed. Then::

    rank, world = get_rank(), get_world_size()
    all_reduce(array, op="mean")       # in place, on every rank
    broadcast(array, root=0)
    barrier()
"""
from __future__ import annotations

from . import launch
from .communicator import SingleProcessCommunicator

_communicator = None
BACKENDS = ("auto", "mpi", "nccl")


def init(backend: str = "auto"):
    """Start the default communicator (idempotent: later calls return the first one).

    backend: "mpi", "nccl" (GPU arrays through NCCL; needs CuPy with NCCL), or "auto": NCCL when
    minidl's active backend is CuPy and NCCL is available, else MPI (with a warning on GPUs).
    Not started by an MPI launcher: the world of one process, whatever ``backend`` says.
    """
    global _communicator
    if backend not in BACKENDS:
        raise ValueError(f"init: backend must be one of {', '.join(map(repr, BACKENDS))}, got {backend!r}")
    if _communicator is not None:
        return _communicator
    if not launch.launched_by_mpi():
        _communicator = SingleProcessCommunicator()
        return _communicator
    from .mpi_communicator import MPICommunicator
    communicator = MPICommunicator()
    if backend == "auto":
        from .. import backends
        if backends.get_backend() == "cupy":
            from .nccl_communicator import nccl_available
            backend = "nccl" if nccl_available() else "mpi"
            if backend == "mpi":
                import warnings
                warnings.warn("minidl.distributed: NCCL is not available, GPU gradients go through host memory "
                              "and MPI (slower); install nvidia-nccl-cu12 / -cu13", RuntimeWarning, stacklevel=2)
    if backend == "nccl":
        from .nccl_communicator import NCCLCommunicator
        communicator = NCCLCommunicator(communicator)
    if communicator.size > 1:
        from .faults import install_excepthook
        install_excepthook(communicator)
    _communicator = communicator
    return communicator


def is_initialized() -> bool:
    return _communicator is not None


def get_communicator():
    """The default communicator; the world of one process until :func:`init` runs."""
    return _communicator if _communicator is not None else SingleProcessCommunicator()


def get_rank() -> int:
    return get_communicator().rank


def get_world_size() -> int:
    return get_communicator().size


def barrier() -> None:
    get_communicator().barrier()


def all_reduce(array, op: str = "sum"):
    """``array`` becomes, in place, the element-wise sum / mean / max / min over every rank."""
    return get_communicator().all_reduce(array, op)


def broadcast(array, root: int = 0):
    """``array`` becomes, in place, rank ``root``'s array on every rank."""
    return get_communicator().broadcast(array, root)


def use_local_gpu() -> int:
    """Make GPU (local rank mod GPUs on this machine) CuPy's current device; returns its id.

    Call it before anything touches the GPU (one process per GPU; with fewer GPUs than processes
    on a node, several share one: NCCL refuses that unless NCCL_MULTI_RANK_GPU_ENABLE=1).
    """
    import cupy
    device = launch.local_rank() % cupy.cuda.runtime.getDeviceCount()
    cupy.cuda.Device(device).use()
    return device
