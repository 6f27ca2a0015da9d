"""The backend contract (bsp.launch.launcher.Launcher, chosen by bsp.launch.backends): the
fork launcher here; the MPI launcher in tests/test_mpi_launcher.py (it loads
MPI, so only under --with-mpi)."""

from __future__ import annotations

import time

import pytest

import bsp
from bsp.launch import backends
from bsp.errors import BSPError, RunTimeoutError
from bsp.launch.launcher import Launcher
from bsp.launch.outcome import Ending, resolve


def program(world: bsp.World, base: int) -> int:
    return world.allreduce(world.pid + base)


def test_an_unknown_backend_is_a_value_error_naming_the_choices() -> None:
    with pytest.raises(ValueError, match="backend must be one of 'fork', 'mpi', not 'threads'"):
        backends.launcher("threads")


@pytest.mark.mpi_skip
def test_the_fork_launcher_runs_any_number_of_ranks_and_serves_nobody() -> None:
    launcher = backends.launcher("fork")
    assert isinstance(launcher, Launcher) and launcher.name == "fork"
    assert launcher.world_size() is None and launcher.is_root()
    outcomes = launcher.launch(program, (10,), {}, 3, None, False)
    assert [outcome.ending for outcome in outcomes] == [Ending.RETURNED] * 3 and resolve(outcomes) == [33] * 3
    assert all(outcome.profile is None for outcome in outcomes)
    with pytest.raises(BSPError, match="the fork backend has no ranks that serve"):
        launcher.serve()
    launcher.close()            # holds nothing between runs


@pytest.mark.mpi_skip
def test_the_fork_launcher_applies_its_run_timeout() -> None:
    def slow(world: bsp.World) -> None:
        world.sync()
        time.sleep(60)          # far past the run's timeout: the launcher ends it

    with pytest.raises(RunTimeoutError):
        backends.launcher("fork", timeout=1.0).launch(slow, (), {}, 2, None, False)
