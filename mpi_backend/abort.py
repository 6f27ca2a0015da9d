"""Ending the whole MPI job from inside, without leaving the MPI library's
shared memory behind.

MPICH keeps a file in /dev/shm for its intra-node shared memory until
MPI_Finalize, so a job that ends by MPI_Abort would leave it there.  Every
process that maps it may unlink its name (the memory stays until the last
process unmaps it), so the aborting process unlinks the ones it maps first.

MPICH's launcher, hydra, has a leak of its own: when a rank calls MPI_Abort,
mpiexec exits without removing the topology file it made in /tmp
(hydra_hwloc_xmlfile_*).  A rank that exits non-zero without finalizing also
makes hydra end the whole job, and then hydra cleans up; so under hydra the
aborting rank just exits.  Elsewhere (Open MPI, srun, which by default lets
the other tasks run on when one exits) MPI_Abort is the way to end a job.
"""

from __future__ import annotations

import os

from mpi4py import MPI

from bsp import stdio


def abort_job(status: int) -> None:
    """Stop every process of the job, with `status`; never returns."""
    for path in mapped_shared_memory_files():
        try:
            os.unlink(path)
        except OSError:
            pass
    stdio.flush()
    status = status or 1            # a job ended this way has failed
    if launched_by_hydra():
        os._exit(status)
    MPI.COMM_WORLD.Abort(status)


def launched_by_hydra() -> bool:
    """Whether MPICH's (or Intel MPI's) launcher started this process: its
    proxies, and no other launcher, give each rank MPI_LOCALNRANKS."""
    return "MPI_LOCALNRANKS" in os.environ and "PMI_RANK" in os.environ


def mapped_shared_memory_files(maps: str = "/proc/self/maps") -> set[str]:
    """The /dev/shm files this process maps (pybsp makes none of its own)."""
    try:
        with open(maps) as lines:
            paths = {line.split(maxsplit=5)[5].strip() for line in lines if " /dev/shm/" in line}
    except (OSError, IndexError):
        return set()
    return {path for path in paths if not path.endswith("(deleted)")}
