"""The environment variables that MPI launchers (mpiexec, mpirun, srun) set
in the processes they start: the one table of them, and what pybsp reads
from it.  Reading them never imports mpi4py, so any module may ask."""

from __future__ import annotations

import os
from typing import Mapping

# Set in every process a launcher starts (Open MPI; MPICH's hydra, Intel MPI
# and srun with PMI-2; PMIx): their presence means "started by a launcher".
LAUNCHER_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMI_RANK", "PMIX_RANK")
# The size of the job (Open MPI; MPICH's hydra and Intel MPI; PMIx; MVAPICH;
# the tasks of an srun step).
SIZE_VARIABLES = ("OMPI_COMM_WORLD_SIZE", "PMI_SIZE", "PMIX_SIZE", "MV2_COMM_WORLD_SIZE", "SLURM_STEP_NUM_TASKS")
# The tasks of a Slurm allocation: the job's size only when nothing above says it.
ALLOCATION_SIZE_VARIABLES = ("SLURM_NTASKS",)
# This process's rank in the job.
RANK_VARIABLES = ("PMI_RANK", "OMPI_COMM_WORLD_RANK", "PMIX_RANK", "SLURM_PROCID")
# (rank, ranks on this node) pairs, for the launchers that set both (MPICH, Open MPI).
NODE_VARIABLES = (("PMI_RANK", "MPI_LOCALNRANKS"), ("OMPI_COMM_WORLD_RANK", "OMPI_COMM_WORLD_LOCAL_SIZE"))


def launched_by_mpi(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether an MPI launcher (mpiexec, mpirun, srun) started this process."""
    if any(name in environ for name in LAUNCHER_VARIABLES):
        return True
    return "SLURM_STEP_ID" in environ and int(environ.get("SLURM_STEP_NUM_TASKS", "1")) > 1


def job_size(environ: Mapping[str, str] = os.environ, allocation: bool = True) -> int | None:
    """The size of the job as the launcher tells it, or None when it does
    not; `allocation`: fall back on the Slurm allocation's tasks."""
    names = SIZE_VARIABLES + (ALLOCATION_SIZE_VARIABLES if allocation else ())
    return _first_number(environ, names, positive=True)


def job_rank(environ: Mapping[str, str] = os.environ) -> int | None:
    """This process's rank as the launcher tells it, or None."""
    return _first_number(environ, RANK_VARIABLES, positive=False)


def rank_on_node(environ: Mapping[str, str]) -> tuple[int, int] | None:
    """(rank, ranks on this node) of a process with environment `environ`,
    if it is a rank of an MPICH or Open MPI job."""
    for rank, size in NODE_VARIABLES:
        if environ.get(rank, "").isdigit() and environ.get(size, "").isdigit():
            return int(environ[rank]), int(environ[size])
    return None


def _first_number(environ: Mapping[str, str], names: tuple[str, ...], positive: bool) -> int | None:
    for name in names:
        text = environ.get(name, "")
        if text.isdigit() and (int(text) > 0 or not positive):
            return int(text)
    return None


def not_in_the_job(how: str) -> str:
    """Why bsp.run on the MPI backend is refused in this process, which `how` says was started."""
    return (f"bsp.run cannot use the MPI job in this process (pid {os.getpid()}, {how}): only the "
            f"processes that the MPI launcher started take part in the job's runs.  Call bsp.run in "
            f"the rank itself, and let the child hand its data back (a multiprocessing Queue, a file)")
