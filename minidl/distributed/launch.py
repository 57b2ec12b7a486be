"""Was this process started by an MPI launcher (``mpiexec -n N``)? Which rank, on which node?

Every MPI launcher tells its processes their rank through environment variables, before MPI is
initialized: MPICH's Hydra sets ``PMI_RANK`` / ``PMI_SIZE``, Open MPI ``OMPI_COMM_WORLD_RANK``,
PMIx-based launchers ``PMIX_RANK``, Slurm's ``srun`` ``SLURM_PROCID``... Reading them costs
nothing, so a script started alone never imports mpi4py (importing it initializes MPI).

The *local* rank (the rank among the processes of one machine) picks the GPU: process k of a node
takes GPU k.
"""
from __future__ import annotations

import os

#: (rank, world size) variable pairs set by the common launchers
RANK_VARIABLES = (
    ("PMI_RANK", "PMI_SIZE"),                                   # MPICH / Intel MPI (Hydra)
    ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_SIZE"),           # Open MPI
    ("PMIX_RANK", None),                                        # PMIx launchers (prterun, Open MPI 5)
    ("MV2_COMM_WORLD_RANK", "MV2_COMM_WORLD_SIZE"),             # MVAPICH2
)
#: local rank variables, in order of preference
LOCAL_RANK_VARIABLES = ("MPI_LOCALRANKID", "OMPI_COMM_WORLD_LOCAL_RANK", "PMIX_LOCAL_RANK",
                        "MV2_COMM_WORLD_LOCAL_RANK", "SLURM_LOCALID")


def launched_by_mpi(environ=None) -> bool:
    """True when an MPI launcher started this process (one of :data:`RANK_VARIABLES` is set)."""
    environ = os.environ if environ is None else environ
    return any(rank in environ for rank, _ in RANK_VARIABLES)


def local_rank(environ=None) -> int:
    """This process's rank among those of its machine (0 when no launcher says)."""
    environ = os.environ if environ is None else environ
    for name in LOCAL_RANK_VARIABLES:
        if name in environ:
            return int(environ[name])
    return 0
