"""A barrier for the ranks of one fork run that spins briefly, then sleeps.

Arrivals are counted in shared memory under a lock; the last rank to arrive
wakes each of the others through its own semaphore.  A waiting rank first
polls its semaphore (cheap when every rank has a core of its own and the
others arrive within microseconds), then blocks on it, so that many more ranks
than cores still progress: a sleeping rank leaves its core to a rank that is
still computing.

The semaphores come from multiprocessing's fork context, which unlinks their
names at once: nothing of them outlives the processes.
"""

from __future__ import annotations

import multiprocessing
import os
import time

import numpy as np

_POLLS_PER_CLOCK_READ = 64
_PARENT_CHECK_SECONDS = 1.0


class Barrier:
    """Made in the launching process before the fork; `wait(pid)` in the ranks."""

    def __init__(self, nprocs: int, spin_seconds: float):
        context = multiprocessing.get_context("fork")
        self._nprocs = nprocs
        self._count: np.ndarray | None = None   # one int64 in shared memory, see `attach`
        self._lock = context.Lock()
        self._wake = [context.Semaphore(0) for _ in range(nprocs)]
        self._spin_seconds = spin_seconds
        self._launcher = os.getpid()

    def close(self) -> None:
        """In the launching process, after the run: let go of the semaphores
        now, rather than whenever a traceback that refers to us is freed."""
        self._lock = None
        self._wake = []

    def attach(self, count: np.ndarray) -> None:
        """In a rank: use `count` (one int64 in shared memory) to count arrivals."""
        self._count = count

    def wait(self, pid: int) -> None:
        """Return once every rank has called wait (each once per barrier)."""
        if self._nprocs == 1:
            return
        with self._lock:
            arrived = int(self._count[0]) + 1
            last = arrived == self._nprocs
            self._count[0] = 0 if last else arrived
        if last:
            for rank, wake in enumerate(self._wake):
                if rank != pid:
                    wake.release()
        else:
            self._sleep(self._wake[pid])

    def _sleep(self, wake) -> None:
        acquire = wake.acquire
        if self._spin_seconds > 0:
            deadline = time.perf_counter() + self._spin_seconds
            while time.perf_counter() < deadline:
                for _ in range(_POLLS_PER_CLOCK_READ):
                    if acquire(False):
                        return
        while not acquire(True, _PARENT_CHECK_SECONDS):
            if os.getppid() != self._launcher:
                # The launching process is gone (only possible where the
                # parent-death signal is not available): nobody will wake us.
                os._exit(70)
