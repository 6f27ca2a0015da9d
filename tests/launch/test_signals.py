"""Ctrl-C (SIGINT) and SIGTERM to the launching process stop every rank
promptly, leave nothing behind, and end the process with the usual status."""

import contextlib
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.mpi_skip
BIN = Path(sys.executable).parent

SCRIPT = textwrap.dedent('''
    import bsp

    def forever(world):
        print("running", flush=True)
        while True:
            world.sync()

    bsp.run(forever)
''')


@pytest.fixture
def start(tmp_path):
    """Start `command forever.py` and wait until its 3 ranks run; whatever
    the test does, nothing it started outlives it."""
    started = []

    def start(*command):
        script = tmp_path / "forever.py"
        script.write_text(SCRIPT)
        env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
        # SIGINT's default back: a suite started in the background of a shell inherits it ignored
        process = subprocess.Popen([*map(str, command), str(script)], stdout=subprocess.PIPE,
                                   stderr=subprocess.PIPE, text=True, env=env,
                                   preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
        started.append(process)
        ranks = 3
        for _ in range(ranks):
            assert process.stdout.readline() == "running\n"
        return process, psutil.Process(process.pid).children(recursive=True)

    yield start
    for process in started:
        with contextlib.suppress(psutil.NoSuchProcess):
            family = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
            for member in family:
                with contextlib.suppress(psutil.NoSuchProcess):
                    member.kill()
            psutil.wait_procs(family, timeout=10)
        process.communicate()


def stopped(process, processes, sig):
    begun = time.monotonic()
    process.send_signal(sig)
    process.communicate(timeout=30)
    gone, alive = psutil.wait_procs(processes, timeout=5)
    return process.returncode, time.monotonic() - begun, alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_bsp_run_stops_every_rank(start, sig):
    process, ranks = start(BIN / "bsp", "run", "-n", 3)
    assert len(ranks) == 3
    status, seconds, alive = stopped(process, ranks, sig)
    assert status == -sig           # the process ended by the signal: a shell reports 128 + sig
    assert seconds < 10 and not alive


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_bsp_run_mpi_stops_the_job(start, sig):
    process, processes = start(BIN / "bsp", "run", "--mpi", "-n", 3)
    status, seconds, alive = stopped(process, processes, sig)
    assert status != 0 and seconds < 20 and not alive


def job_shared_memory(processes):
    """The MPI library's /dev/shm files that `processes` map."""
    found = set()
    for process in processes:
        try:
            with open(f"/proc/{process.pid}/maps") as maps:
                found |= {line.split(maxsplit=5)[5].strip().removesuffix(" (deleted)")
                          for line in maps if " /dev/shm/mpich" in line}
        except (OSError, IndexError):
            continue
    return found


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
def test_bsp_run_mpi_killed_takes_its_job_with_it_and_leaves_no_shared_memory(start):
    process, processes = start(BIN / "bsp", "run", "--mpi", "-n", 3)
    shared = job_shared_memory(processes)
    process.kill()
    process.communicate(timeout=30)
    gone, alive = psutil.wait_procs(processes, timeout=30)
    assert not alive
    assert not [path for path in shared if os.path.exists(path)]


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
def test_bsp_run_mpi_ended_by_sigterm_exits_with_143(start):
    process, processes = start(BIN / "bsp", "run", "--mpi", "-n", 3)
    status, seconds, alive = stopped(process, processes, signal.SIGTERM)
    assert status == 128 + signal.SIGTERM and not alive
