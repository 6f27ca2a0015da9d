"""The clock of the MPI sync timeout: time a rank spent running.

Under MPI no supervisor watches the ranks, so each waiting rank measures
how long it has waited; when the whole job is stopped (Ctrl-Z, SIGSTOP) and
resumed, the wall clock jumps, and that jump must not count against a late
rank.  Kept apart from the transport so that it can be used and tested
without initializing MPI.
"""

from __future__ import annotations

import time


class RunningClock:
    """Seconds since it was made, less the time this process was not running.

    A rank looks at the clock at every poll while it waits; a gap of
    more than `GAP_SECONDS` between two looks means it was stopped (Ctrl-Z,
    SIGSTOP of the job) or starved of a core, and the other ranks with it,
    so that time is not counted against a late rank: a resumed job must not
    fail with a false SyncTimeoutError.
    """

    GAP_SECONDS = 1.0

    def __init__(self) -> None:
        self._last = time.monotonic()
        self._running = 0.0

    def seconds(self) -> float:
        now = time.monotonic()
        if now - self._last <= self.GAP_SECONDS:
            self._running += now - self._last
        self._last = now
        return self._running
