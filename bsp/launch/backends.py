"""The backend contract, seen from the launching process, and the one place
that names the backends.

A backend provides two things:

- a `bsp.core.transport.Transport` per rank, which moves opaque bytes;
- a `bsp.launch.launcher.Launcher` in the launching process, which starts the ranks of a run
  (each running `bsp.launch.observers.run_rank` over its Transport) and collects
  their Outcomes.

`launcher(name)` returns the launcher of the fork backend (`bsp.fork`) or
of the MPI backend (`mpi_backend`, imported only when chosen: importing
mpi4py initializes MPI, which breaks fork).  Nothing else in `bsp` imports
`mpi_backend` by name; `mpiexec()` gives the command line's MPI tools
(finding and probing the launcher of mpi4py's MPI) the same way.
"""

from __future__ import annotations

import sys
from types import ModuleType
from typing import TYPE_CHECKING

from bsp.errors import BSPError
from bsp.fork.backend import ForkLauncher
from bsp.launch.launcher import Launcher
from bsp.launch.mpi_environment import not_in_the_job

if TYPE_CHECKING:
    from mpi_backend import mpiexec as _mpiexec

    JobLauncher = _mpiexec.Launcher       # an MPI library's mpiexec, as mpi_backend.mpiexec finds it

BACKENDS = ("fork", "mpi")


def launcher(name: str, timeout: float | None = None) -> Launcher:
    """The launcher of backend `name` ("fork" or "mpi").  `timeout`: seconds
    a whole fork run may take (RunTimeoutError after; None: no limit); an
    MPI run is bounded by the sync timeout alone, as no process outside the
    job can see its ranks.  Raises BSPError when the MPI backend cannot be
    imported (no mpi4py), ValueError for another name."""
    if name == "fork":
        return ForkLauncher(timeout)
    if name == "mpi":
        _check_in_the_job()
        try:       # here, not at the top: importing mpi4py initializes MPI, which breaks fork
            from mpi_backend.backend import MPILauncher
        except ImportError as error:
            raise BSPError(f"the MPI backend needs mpi4py ({error}); install it with pip install mpi4py "
                           "(with your own MPI), or pip install mpi4py mpich for an MPI from PyPI") from None
        return MPILauncher()
    raise ValueError(f"backend must be one of {', '.join(map(repr, BACKENDS))}, not {name!r}")


def _check_in_the_job() -> None:
    """Raise BSPError in a process that multiprocessing started from a rank
    of an MPI job: it is no process of the job, and its MPI (inherited
    from the rank by fork, or started afresh without the launcher's
    welcome) cannot reach the other ranks; a run would hang the job.
    (A child forked otherwise is caught by the MPI backend itself.)"""
    multiprocessing = sys.modules.get("multiprocessing")
    parent = multiprocessing.parent_process() if multiprocessing is not None else None
    if parent is not None:
        raise BSPError(not_in_the_job(f"multiprocessing started from pid {parent.pid}"))


def mpiexec() -> ModuleType:
    """mpi_backend.mpiexec: the MPI library's launcher, found and probed for
    `bsp run --mpi` and `bsp doctor`.  Raises ImportError without mpi4py."""
    from mpi_backend import mpiexec as tools
    return tools
