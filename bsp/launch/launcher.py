"""The launcher interface: what a backend provides in the launching process,
beside the `bsp.core.transport.Transport` each of its ranks uses.  The fork
backend (`bsp.fork.backend`) and the MPI backend (`mpi_backend.backend`)
implement it; `bsp.launch.backends.launcher(name)` chooses one.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, Callable

from bsp.errors import BSPError
from bsp.launch.outcome import Outcome

# Why a run cannot start while another thread's run is in progress, on a
# backend whose runs take every process of the job (MPI).
ONE_RUN_AT_A_TIME = ("another bsp.run of this MPI job is in progress (in another thread): the MPI backend "
                     "runs one at a time, as every rank takes part in each; run them one after the other "
                     "(the fork backend runs concurrent calls independently; inside a BSP program, runs "
                     "cannot be nested)")


class Launcher(ABC):
    """Starts the ranks of runs on one backend, from the launching process."""

    name: str

    @abstractmethod
    def launch(self, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
               sync_timeout: float | None, profile: bool) -> list[Outcome]:
        """Run `program(world, *args, **kwargs)` on `nprocs` ranks and
        return their Outcomes in pid order (each with its record of the
        supersteps when `profile`).  `sync_timeout`: see bsp.run.  Raises
        what the backend's ranks cannot report as an Outcome (a rank that
        died, a sync timeout, ...)."""

    @abstractmethod
    def world_size(self) -> int | None:
        """The most ranks a run may have (None: no limit)."""

    def is_root(self) -> bool:
        """Whether this process launches the runs (under MPI: rank 0).
        The others `serve`."""
        return True

    def serve(self) -> None:
        """On a process that is not the root: run the root's runs with it;
        never returns.  Backends with no such processes raise BSPError."""
        raise BSPError(f"the {self.name} backend has no ranks that serve another process's runs")

    def join(self) -> None:
        """On the root, when the other processes are known to `serve` (the
        pytest plugin makes them): meet them now rather than at the first
        run, so that a session with no run still ends them.  Collective
        under MPI; nothing for backends with no serving processes."""

    def close(self, status: int = 0) -> None:
        """The launching process is done (with exit `status`): release what
        the backend holds between runs (under MPI: the serving ranks exit
        with `status`).  Nothing for backends that hold nothing."""
