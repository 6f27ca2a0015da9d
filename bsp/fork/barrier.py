"""Barriers for the ranks of one fork run that spin briefly, then sleep.

A waiting rank first polls its semaphore (cheap when every rank has a core
of its own and the others arrive within microseconds), then blocks on it, so
that many more ranks than cores still progress: a sleeping rank leaves its
core to a rank that is still computing.

- `DisseminationBarrier`, when every rank has a core: in round k each rank
  signals rank pid + 2^k and waits for rank pid - 2^k; after ceil(log2 p)
  rounds every rank has heard, directly or not, from every other.  No lock.
- `CentralBarrier`, when ranks share cores: arrivals are counted under a lock
  and the last rank wakes all the others at once, so a sleeping rank is woken
  once per barrier rather than once per round.

Semaphores count, so a signal for the next barrier that comes early is kept,
never lost.  They have no name (see `semaphores`): nothing of them outlives
the processes, even a launching process killed while it makes them.
"""

from __future__ import annotations

import os
import time
from typing import TYPE_CHECKING, Any, Callable

from bsp.fork.semaphores import Context

if TYPE_CHECKING:
    from bsp.fork.shared import SharedRegion

_POLLS_PER_CLOCK_READ = 64
_PARENT_CHECK_SECONDS = 1.0


class Barrier:
    """Made in the launching process before the fork; `wait(pid)` in the ranks.
    Where `serializes_arrivals`, the ranks arrive one at a time, under a
    lock: `wait(pid, on_arrival)` calls on_arrival(first) under it, `first`
    telling the first rank to arrive at this barrier."""

    serializes_arrivals = False

    def __init__(self, nprocs: int, spin_seconds: float):
        self._nprocs = nprocs
        self._spin_seconds = spin_seconds
        self._launcher = os.getpid()

    def close(self) -> None:
        """In the launching process, after the run: let go of the semaphores
        now, rather than whenever a traceback that refers to us is freed.
        (Each kind drops its own: compiled, a barrier has no __dict__.)"""
        raise NotImplementedError

    def wait(self, pid: int, on_arrival: Callable[[bool], None] | None = None) -> None:
        """Return once every rank has called wait (each once per barrier)."""
        raise NotImplementedError

    def _sleep(self, semaphore: Any) -> None:
        acquire = semaphore.acquire
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


class DisseminationBarrier(Barrier):
    def __init__(self, nprocs: int, spin_seconds: float):
        super().__init__(nprocs, spin_seconds)
        context = Context()     # the semaphores keep what they need of it
        self._rounds = [1 << k for k in range((nprocs - 1).bit_length())]
        self._signals = [[context.Semaphore(0) for _ in self._rounds] for _ in range(nprocs)]
        # each rank's rounds: what it signals, what it waits on (made on first use)
        self._steps: list[list[tuple[Any, Any]] | None] = [None] * nprocs

    def close(self) -> None:
        self._signals, self._steps = [], []

    def wait(self, pid: int, on_arrival: Callable[[bool], None] | None = None) -> None:
        """Return once every rank has called wait (each once per barrier);
        `on_arrival` is not called: arrivals are not serialized."""
        steps = self._steps[pid]
        if steps is None:
            steps = self._steps[pid] = [(self._signals[(pid + distance) % self._nprocs][k].release,
                                         self._signals[pid][k]) for k, distance in enumerate(self._rounds)]
        for signal, semaphore in steps:
            signal()
            if not semaphore.acquire(False):
                self._sleep(semaphore)


class CentralBarrier(Barrier):
    serializes_arrivals = True

    def __init__(self, nprocs: int, spin_seconds: float, region: SharedRegion):
        super().__init__(nprocs, spin_seconds)
        context = Context()
        self._lock: Any = context.Lock()
        self._wake = [context.Semaphore(0) for _ in range(nprocs)]
        self._region = region       # arrivals are counted in its BARRIER word
        self._words: memoryview | None = None   # made in the rank, on first use

    def close(self) -> None:
        self._lock, self._wake, self._words = None, [], None

    def wait(self, pid: int, on_arrival: Callable[[bool], None] | None = None) -> None:
        """Return once every rank has called wait (each once per barrier),
        having called `on_arrival(first)` under the lock of the arrivals."""
        words, index = self._words, self._region.BARRIER
        if words is None:
            words = self._words = self._region.words()
        with self._lock:
            if on_arrival is not None:
                on_arrival(words[index] == 0)
            arrived = words[index] + 1
            last = arrived == self._nprocs
            words[index] = 0 if last else arrived
        if last:
            for rank, wake in enumerate(self._wake):
                if rank != pid:
                    wake.release()
        else:
            self._sleep(self._wake[pid])


def make_barrier(region: SharedRegion, cores: int, spin_seconds: float) -> Barrier:
    """The barrier that suits `region.nprocs` ranks on `cores` cores."""
    if region.nprocs <= cores:
        return DisseminationBarrier(region.nprocs, spin_seconds)
    return CentralBarrier(region.nprocs, 0.0, region)
