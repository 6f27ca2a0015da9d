"""The test helper for users, bsp.testing.spmd."""

import inspect
import threading

import pytest

from bsp.testing import SPMDTestFailure, require_nprocs, run_spmd, spmd


@spmd(nprocs=[1, 3])
def test_fixtures_reach_every_rank(world, tmp_path):
    (tmp_path / f"rank{world.pid}").write_text("here")
    world.sync()
    assert len(list(tmp_path.iterdir())) == world.nprocs


def test_the_test_is_parametrized_over_nprocs():
    @spmd(nprocs=[2, 5])
    def body(world, tmp_path):
        pass

    assert list(inspect.signature(body).parameters) == ["nprocs", "tmp_path"]
    [mark] = body.pytestmark
    assert mark.name == "parametrize" and mark.args == ("nprocs", (2, 5))


def test_every_failing_rank_is_reported_with_its_traceback():
    def body(world):
        world.sync()
        assert world.pid % 2 == 0, f"rank {world.pid} is odd"

    require_nprocs(4)
    with pytest.raises(SPMDTestFailure) as caught:
        run_spmd(body, 4)
    report = str(caught.value)
    assert report.startswith("with nprocs=4: 2 rank(s) failed")
    assert "--- rank 1 ---" in report and "--- rank 3 ---" in report
    assert "AssertionError: rank 3 is odd" in report
    assert "assert world.pid % 2 == 0" in report


@pytest.mark.mpi_skip
def test_a_hanging_body_fails_at_the_timeout():
    def body(world):
        if world.pid == 0:
            threading.Event().wait()
        world.sync()

    with pytest.raises(SPMDTestFailure, match="RunTimeoutError: the run exceeded its time limit of 0.5 s"):
        run_spmd(body, 2, timeout=0.5)


def test_calling_the_test_without_pytest_runs_every_nprocs(tmp_path):
    seen = tmp_path / "seen"

    def body(world, log):
        if world.pid == 0:
            with open(log, "a") as out:
                out.write(f"{world.nprocs}\n")

    test = spmd(nprocs=[1, 2])(body)
    test(log=seen)
    assert seen.read_text().split() == ["1", "2"]


def test_bad_nprocs_lists():
    with pytest.raises(ValueError, match="at least one nprocs"):
        spmd(nprocs=[])
    with pytest.raises(ValueError, match="nprocs must be at least 1"):
        spmd(nprocs=[2, 0])
