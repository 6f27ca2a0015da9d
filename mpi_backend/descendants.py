"""The processes a rank's program started, ended with its run.

An MPI rank outlives its runs (it serves rank 0's next call), so what a
program started on it (a subprocess, a forked copy, a daemonic
multiprocessing child) would outlive the run, and with it the job: such a
process inherits the rank's standard streams and its connection to the
launcher, and mpiexec waits for them to close.  At the end of every run
each rank ends its descendants, as the fork backend ends a rank's process
group: SIGTERM, a moment to clean up, then SIGKILL.  During the run the
rank is a child subreaper (`adopting_orphans`, as the fork backend's
launching process is), so that a daemon the program starts (setsid and a
second fork) stays its descendant rather than become init's: it would hold
the launcher's pipes, and `bsp run --mpi` would not exit before it.  Linux
only (it reads /proc); elsewhere nothing is done.
"""

from __future__ import annotations

import os
import signal
import time

from bsp.fork.processes import adopting_orphans as adopting_orphans, children, descendants as descendants
from mpi_backend import endings

GRACE_SECONDS = 2.0
_POLL_SECONDS = 0.01


def end_descendants(grace: float = GRACE_SECONDS) -> list[int]:
    """End every descendant of this process; return their pids."""
    found = descendants(os.getpid())
    if not found:
        return []
    _send(found, signal.SIGTERM)
    deadline = time.monotonic() + grace
    while time.monotonic() < deadline and any(endings.alive(pid) for pid in found):
        _reap_children()
        time.sleep(_POLL_SECONDS)
    _send([pid for pid in found if endings.alive(pid)], signal.SIGKILL)
    _reap_children()
    return found


def _send(pids: list[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except (ProcessLookupError, PermissionError):
            pass


def _reap_children() -> None:
    """Reap this process's ended children (the program's, which it no
    longer waits for)."""
    for pid in children(os.getpid()):
        try:
            os.waitpid(pid, os.WNOHANG)
        except ChildProcessError:
            pass
