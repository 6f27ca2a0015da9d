"""The MPI backend's `bsp.launch.launcher.Launcher`: the ranks of the MPI job this
process belongs to, rank 0 launching, the others serving (see `launcher`)."""

from __future__ import annotations

import os
from typing import Any, Callable

from bsp.errors import BSPError
from bsp.launch.mpi_environment import not_in_the_job

from bsp.launch.launcher import Launcher
from bsp.launch.outcome import Outcome

from mpi_backend import launcher


class MPILauncher(Launcher):
    """Runs on ranks 0..nprocs-1 of the job; the job's size bounds nprocs."""

    name = "mpi"

    def __init__(self) -> None:
        if os.getpid() != launcher.PID:         # MPI's state does not survive a fork
            raise BSPError(not_in_the_job(f"forked from pid {launcher.PID}, a process of the job"))

    def launch(self, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
               sync_timeout: float | None, profile: bool) -> list[Outcome]:
        return launcher.launch(program, args, kwargs, nprocs, sync_timeout, profile)

    def world_size(self) -> int:
        return launcher.world_size()

    def is_root(self) -> bool:
        return launcher.is_root()

    def serve(self) -> None:
        launcher.serve()

    def join(self) -> None:
        launcher.join_servers()

    def close(self, status: int = 0) -> None:
        launcher.shutdown(status)
