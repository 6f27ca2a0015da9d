"""Ending the whole MPI job from inside, without leaving the MPI library's
shared memory behind.

MPICH keeps a file in /dev/shm for its intra-node shared memory until
MPI_Finalize, so a job that ends by MPI_Abort would leave it there.  Every
process that maps it may unlink its name (the memory stays until the last
process unmaps it), so the aborting process unlinks the ones it maps first.
"""

from __future__ import annotations

import os
import sys

from mpi4py import MPI


def abort_job(status: int) -> None:
    """Stop every process of the job, with `status`; never returns."""
    for path in mapped_shared_memory_files():
        try:
            os.unlink(path)
        except OSError:
            pass
    sys.stdout.flush()
    sys.stderr.flush()
    MPI.COMM_WORLD.Abort(status)


def mapped_shared_memory_files(maps: str = "/proc/self/maps") -> set[str]:
    """The /dev/shm files this process maps (pybsp makes none of its own)."""
    try:
        with open(maps) as lines:
            paths = {line.split(maxsplit=5)[5].strip() for line in lines if " /dev/shm/" in line}
    except (OSError, IndexError):
        return set()
    return {path for path in paths if not path.endswith("(deleted)")}
