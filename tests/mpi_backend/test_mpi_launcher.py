"""The MPI backend's launcher through the backend contract (under
--with-mpi only: it loads MPI): rank 0 launches, the other ranks serve."""

from __future__ import annotations

import pytest

import bsp
from bsp.launch import backends
from bsp.launch.launcher import Launcher
from bsp.launch.outcome import Ending, resolve

pytestmark = pytest.mark.mpi


def program(world: bsp.World, base: int) -> tuple[int, int]:
    return world.nprocs, world.allreduce(world.pid + base)


def test_the_mpi_launcher_runs_on_the_ranks_of_the_job() -> None:
    from mpi4py import MPI
    launcher = backends.launcher("mpi")
    assert isinstance(launcher, Launcher) and launcher.name == "mpi"
    size = MPI.COMM_WORLD.Get_size()
    assert launcher.world_size() == size and launcher.is_root()        # pytest runs on rank 0
    outcomes = launcher.launch(program, (1,), {}, size, None, True)
    assert [outcome.ending for outcome in outcomes] == [Ending.RETURNED] * size
    assert resolve(outcomes) == [(size, sum(range(size)) + size)] * size
    assert all(outcome.profile is not None for outcome in outcomes)     # profiled: every rank's record came back


def test_more_ranks_than_the_job_has_is_a_value_error() -> None:
    launcher = backends.launcher("mpi")
    with pytest.raises(ValueError, match="this MPI job has only"):
        launcher.launch(program, (0,), {}, launcher.world_size() + 1, None, False)
