"""Ending the whole MPI job from inside, without leaving the MPI library's
or the launcher's files behind.

MPI_Abort ends every process of the job on every launcher (srun included,
which by default lets the other tasks run on when one exits), but two
things outlive it:

- MPICH keeps a file in /dev/shm for its intra-node shared memory until
  MPI_Finalize.  Every process that maps it may unlink its name (the memory
  stays until the last process unmaps it), so the aborting process unlinks
  the ones it maps first.
- MPICH's launcher, hydra, makes a topology file in /tmp
  (hydra_hwloc_xmlfile_*) and does not remove it when a rank aborts.  Its
  proxy, the rank's parent, holds the file open: the aborting rank finds it
  there and unlinks it too.
"""

from __future__ import annotations

import os
from typing import NoReturn

from mpi4py import MPI

from bsp.launch import stdio

from mpi_backend.procmaps import mapped_files

_LAUNCHER_TOPOLOGY_FILE = "hydra_hwloc_xmlfile_"
_OUTPUT_SECONDS = 2.0       # the most an abort waits for the launcher to read what was printed


def abort_job(status: int) -> NoReturn:
    """Stop every process of the job, with `status` (1 if 0: the job
    failed); never returns."""
    for path in mapped_shared_memory_files() | launcher_topology_files():
        try:
            os.unlink(path)
        except OSError:
            pass
    stdio.flush()
    stdio.wait_until_read(_OUTPUT_SECONDS)
    MPI.COMM_WORLD.Abort(status or 1)
    # MPI_Abort may return (MPICH does, when the launcher is gone or slow
    # to act): an abort never returns into the program.
    os._exit(status or 1)


def mapped_shared_memory_files(maps: str = "/proc/self/maps") -> set[str]:
    """The /dev/shm files this process maps (pybsp makes none of its own)."""
    return {path for path in mapped_files(maps, " /dev/shm/") if not path.endswith("(deleted)")}


def launcher_topology_files() -> set[str]:
    """hydra's topology files among the open files of this rank's parent,
    the launcher's proxy."""
    folder = f"/proc/{os.getppid()}/fd"
    found: set[str] = set()
    try:
        names = os.listdir(folder)
    except OSError:             # not Linux, or not ours to read
        return found
    for name in names:
        try:
            link = os.readlink(os.path.join(folder, name))
        except OSError:         # closed meanwhile
            continue
        if os.path.basename(link).startswith(_LAUNCHER_TOPOLOGY_FILE):
            found.add(link)
    return found
