"""mpi_backend.endings: how `bsp run --mpi` learns that a rank died when
the rank is not its child (mpiexec's proxy is its parent, and reaps it)."""

import os
import select
import signal
import subprocess
import sys

import pytest

from mpi_backend import endings

# The middle process: starts a child, gives its pid, waits for a line, then
# ends it (closing its stdin: it exits 3, if the test has not killed it)
# and reaps it, as an MPI launcher's proxy reaps a rank.
PARENT = """
import subprocess, sys
child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"], stdin=subprocess.PIPE)
print(child.pid, flush=True)
sys.stdin.readline()
child.stdin.close()
print(child.wait(), flush=True)
"""


def _pidfd_keeps_exit_status() -> bool:
    release = tuple(int(part) for part in os.uname().release.split(".")[:2] if part.isdigit())
    return sys.platform == "linux" and release >= (6, 15)


@pytest.mark.skipif(not _pidfd_keeps_exit_status(), reason="needs Linux 6.15 or later (PIDFD_INFO_EXIT)")
@pytest.mark.parametrize("kill, status, shell", [(True, -9, 137), (False, 3, 3)])
def test_a_reaped_grandchilds_ending_is_told_by_its_pidfd(kill, status, shell):
    parent = subprocess.Popen([sys.executable, "-c", PARENT], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                              text=True)
    try:
        child = int(parent.stdout.readline())
        pidfd = os.pidfd_open(child)
        try:
            if kill:
                os.kill(child, signal.SIGKILL)
            parent.stdin.write("go\n")
            parent.stdin.flush()
            assert int(parent.stdout.readline()) == status          # the parent has reaped it
            assert not endings.killed(child)                         # /proc shows it no more
            assert endings.exit_status(child) is None
            reaped = endings.reaped_status(pidfd)
            assert endings.by_signal(reaped) is kill and endings.shell_status(reaped) == shell
        finally:
            os.close(pidfd)
    finally:
        parent.stdin.close()
        parent.wait(timeout=60)


def test_a_running_process_is_alive_and_not_ending():
    assert endings.alive(os.getpid()) and not endings.ending(os.getpid()) and not endings.killed(os.getpid())
    assert endings.exit_status(os.getpid()) is None
    pidfd = os.pidfd_open(os.getpid())
    try:
        assert endings.reaped_status(pidfd) is None       # no exit status yet
    finally:
        os.close(pidfd)


@pytest.mark.parametrize("kill, shell", [(True, 137), (False, 3)])
def test_a_zombies_ending_is_read_before_its_parent_reaps_it(kill, shell):
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.stdin.read(); sys.exit(3)"],
                             stdin=subprocess.PIPE)
    pidfd = os.pidfd_open(child.pid)
    try:
        if kill:
            os.kill(child.pid, signal.SIGKILL)
        child.stdin.close()
        select.select([pidfd], [], [], 60)        # readable once it has ended: a zombie until we reap it
        status = endings.exit_status(child.pid)
        assert not endings.alive(child.pid) and endings.ending(child.pid)
        assert endings.killed(child.pid) is kill and endings.shell_status(status) == shell
    finally:
        os.close(pidfd)
        child.wait(timeout=60)
