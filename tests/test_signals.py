"""Ctrl-C (SIGINT) and SIGTERM to the launching process stop every rank
promptly, leave nothing behind, and end the process with the usual status."""

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


def start(tmp_path, *command):
    script = tmp_path / "forever.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    process = subprocess.Popen([*map(str, command), str(script)], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True, env=env)
    ranks = 3
    for _ in range(ranks):
        assert process.stdout.readline() == "running\n"
    return process, psutil.Process(process.pid).children(recursive=True)


def stopped(process, processes, sig):
    begun = time.monotonic()
    process.send_signal(sig)
    process.communicate(timeout=30)
    gone, alive = psutil.wait_procs(processes, timeout=5)
    return process.returncode, time.monotonic() - begun, alive


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_bsp_run_stops_every_rank(tmp_path, sig):
    process, ranks = start(tmp_path, BIN / "bsp", "run", "-n", 3)
    assert len(ranks) == 3
    status, seconds, alive = stopped(process, ranks, sig)
    assert status == -sig           # the process ended by the signal: a shell reports 128 + sig
    assert seconds < 10 and not alive


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_bsp_run_mpi_stops_the_job(tmp_path, sig):
    process, processes = start(tmp_path, BIN / "bsp", "run", "--mpi", "-n", 3)
    status, seconds, alive = stopped(process, processes, sig)
    assert status != 0 and seconds < 20 and not alive
