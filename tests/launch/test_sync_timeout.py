"""The sync timeout: ranks that wait at a sync for a rank that never comes
end the run with SyncTimeoutError naming the late ranks, on both backends;
it can be set and turned off."""

import os
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest

import bsp
from bsp.launch.bsp_run import DEFAULT_SYNC_TIMEOUT, choose_sync_timeout

MPIEXEC = Path(sys.executable).parent / "mpiexec"


def stuck_on(world, rank, seconds=None):
    world.sync()
    if world.pid == rank:
        if seconds is None:
            threading.Event().wait()        # never comes back
        time.sleep(seconds)                 # comes back late: that is the point here
    world.sync()
    return world.pid


@pytest.mark.mpi_skip
@pytest.mark.parametrize("nprocs, late", [(2, 1), (4, 0), (4, 3)])
def test_fork_ranks_that_never_arrive_are_named(nprocs, late):
    start = time.monotonic()
    with pytest.raises(bsp.SyncTimeoutError) as caught:
        bsp.run(stuck_on, late, nprocs=nprocs, backend="fork", sync_timeout=1.0)
    assert time.monotonic() - start < 10
    assert caught.value.late == [late]
    assert caught.value.waiting == [rank for rank in range(nprocs) if rank != late]
    assert caught.value.superstep == 1
    assert f"ranks [{late}] did not reach the sync of superstep 1 within the sync timeout of 1 s" in str(caught.value)


@pytest.mark.mpi_skip
def test_a_late_rank_within_the_timeout_is_fine():
    assert bsp.run(stuck_on, 1, 0.5, nprocs=2, backend="fork", sync_timeout=5) == [0, 1]


@pytest.mark.mpi_skip
def test_the_timeout_can_be_turned_off(monkeypatch):
    monkeypatch.setenv("BSP_SYNC_TIMEOUT", "0")
    assert choose_sync_timeout(None) is None
    assert choose_sync_timeout(0) is None
    monkeypatch.setenv("BSP_SYNC_TIMEOUT", "2.5")
    assert choose_sync_timeout(None) == 2.5
    assert choose_sync_timeout(7) == 7.0
    monkeypatch.delenv("BSP_SYNC_TIMEOUT")
    assert choose_sync_timeout(None) == DEFAULT_SYNC_TIMEOUT == 600


SCRIPT = textwrap.dedent('''
    import sys, threading
    import bsp

    def stuck_on(world, rank):
        world.sync()
        if world.pid == rank:
            threading.Event().wait()
        world.sync()

    if __name__ == "__main__":
        try:
            bsp.run(stuck_on, int(sys.argv[1]), sync_timeout=1)
        except bsp.SyncTimeoutError as error:
            print("late:", error.late, "waiting:", error.waiting, flush=True)
            raise
''')


@pytest.mark.mpi_skip
@pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec beside this Python")
@pytest.mark.parametrize("late", [2, 0])
def test_mpi_ranks_that_never_arrive_are_named_and_the_job_ends(tmp_path, late):
    script = tmp_path / "stuck.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    start = time.monotonic()
    done = subprocess.run([MPIEXEC, "-n", "3", sys.executable, script, str(late)],
                          capture_output=True, text=True, env=env, timeout=120)
    assert time.monotonic() - start < 60
    assert done.returncode != 0
    waiting = [rank for rank in range(3) if rank != late]
    assert f"ranks [{late}] did not reach the sync of superstep 1 within the sync timeout of 1 s; " \
           f"ranks {waiting} waited there" in done.stdout + done.stderr
    if late != 0:        # rank 0 waited: the launching process raised the error itself
        assert f"late: [{late}] waiting: {waiting}" in done.stdout
