"""The test helper for users, bsp.testing.spmd."""

import inspect
import os
import subprocess
import sys
import textwrap
import threading
from pathlib import Path

import pytest

from bsp.testing import SPMDTestFailure, assert_ranks_raise, require_nprocs, run_spmd, spmd


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


def fails_on(world, ranks, error):
    world.sync()
    if world.pid in ranks:
        raise error
    world.sync()
    return world.pid


def test_assert_ranks_raise_passes_when_exactly_those_ranks_raise_that():
    require_nprocs(3)
    error = assert_ranks_raise(fails_on, [1, 2], IndexError("index 9 is out of bounds"), nprocs=3, ranks=[2, 1],
                               exception=IndexError, match=r"index \d is out")
    assert sorted(error.failures) == [1, 2]


@pytest.mark.parametrize("ranks, error, expected, message", [
    ([1], IndexError("index x"), [1, 2], r"expected ranks \[1, 2\] \(and no other\) to raise IndexError "
                                         "matching 'index'; rank 1 raised IndexError: index x"),
    ([1], KeyError("index"), [1], "to raise IndexError matching 'index'; rank 1 raised KeyError: 'index'"),
    ([1], IndexError("other"), [1], "to raise IndexError matching 'index'; rank 1 raised IndexError: other"),
    ([], None, [0], r"expected ranks \[0\] to raise IndexError; every rank returned: \[0, 1\]"),
])
def test_assert_ranks_raise_says_what_happened_instead(ranks, error, expected, message):
    require_nprocs(2)
    with pytest.raises(AssertionError, match=message):
        assert_ranks_raise(fails_on, ranks, error, nprocs=2, ranks=expected, exception=IndexError, match="index")


SUITE = textwrap.dedent('''
    import threading
    from bsp.testing import spmd

    @spmd(nprocs=[2], timeout=2)
    def test_1_rank_zero_computes_forever(world):
        if world.pid == 0:
            threading.Event().wait()
        world.sync()

    @spmd(nprocs=[2], timeout=2)
    def test_2_the_job_goes_on(world):
        assert world.allreduce(1) == 2

    @spmd(nprocs=[2], timeout=2)
    def test_3_rank_one_computes_forever(world):
        if world.pid == 1:
            threading.Event().wait()
        world.sync()

    @spmd(nprocs=[2], timeout=2)
    def test_4_the_job_has_lost_a_rank(world):
        world.sync()
''')


def pytest_under_mpiexec(tmp_path, suite):
    """Run the test file `suite` under `mpiexec -n 2 pytest --with-mpi`."""
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python: scripts/setup test mpich installs one")
    (tmp_path / "conftest.py").write_text('pytest_plugins = ["bsp.testing"]\n')
    (tmp_path / "test_suite.py").write_text(suite)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    return subprocess.run([str(mpiexec), "-n", "2", sys.executable, "-m", "pytest", "--with-mpi", "-p",
                           "no:cacheprovider", "-q", "test_suite.py"], capture_output=True, text=True,
                          env=env, cwd=tmp_path, timeout=240)


@pytest.mark.mpi_skip
def test_a_session_under_mpiexec_that_makes_no_run_ends(tmp_path):
    done = pytest_under_mpiexec(tmp_path, textwrap.dedent('''
        import pytest

        @pytest.mark.mpi_skip
        def test_fork_only():
            pass
    '''))
    assert done.returncode == 0 and "1 skipped" in done.stdout


@pytest.mark.mpi_skip
def test_hanging_tests_under_mpiexec_fail_with_pytest_report_and_the_errors(tmp_path):
    done = pytest_under_mpiexec(tmp_path, SUITE)
    out = done.stdout
    assert done.returncode != 0
    assert "TimeoutError: the test body was still computing on rank 0 after the spmd timeout of 2 s" in out
    assert "in test_1_rank_zero_computes_forever\n        threading.Event().wait()" in out
    assert "SyncTimeoutError: ranks [1] did not reach the sync of superstep 0 within the sync timeout of 2 s; " \
           "ranks [0] waited there" in out
    assert "this MPI job can run nothing more: an earlier run lost ranks" in out
    assert "3 failed, 1 passed" in out
