"""The supervisor of a fork run: in the launching process, it reads the
ranks' outcomes as they come and watches the ranks between reads.

Each rank writes its Outcome to a pipe of its own and exits.  The end of a
rank is seen on its exit watch (a pidfd, where Linux has one), not only at
the end of file on its pipe: a process the rank started holds the pipe open
as long as it lives, and must not hold the run.  When a rank ends, its
process group goes with it (whatever it started and left running), and if no
complete Outcome came first, the rank died: RankDiedError names it, the
first rank seen dead, before any other rank is ended.

Between reads it looks for a run past its time limit, ranks that wait at a
sync for longer than the sync timeout, and ranks stranded at a barrier.
Time the whole job spends stopped (Ctrl-Z, SIGSTOP of every rank) does not
count towards the sync timeout; a rank stopped alone (SIGSTOP, a debugger)
is late like any other, and the SyncTimeoutError says it is stopped.
"""

from __future__ import annotations

import os
import selectors
import time
from typing import cast

from bsp.errors import BSPError, RankDiedError, RunTimeoutError, SyncTimeoutError
from bsp.launch.outcome import Outcome
from bsp.core.wire import from_block
from bsp.fork.processes import describe_exit, has_ended, is_stopped, reap, signal_group, watch_exit
from bsp.fork.shared import SharedRegion

_READ_CHUNK = 1 << 20
_STRANDED_POLL_SECONDS = 0.2
_EXIT_POLL_SECONDS = 0.2        # where there is no exit watch (macOS)
_SUSPENSION_SLACK = 0.5         # a look at the ranks later than its interval by more: this process was stopped
_OUT, _EXIT = 0, 1

resumes = 0     # SIGCONTs this process received (the launcher counts them): the job was stopped


class Supervisor:
    def __init__(self, children: dict[int, int], readers: list[int], shared: SharedRegion,
                 timeout: float | None, sync_timeout: float | None):
        self._children = children
        self._readers = readers
        self._shared = shared
        self._timeout = timeout
        self._sync_timeout = sync_timeout or None
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._received = [bytearray() for _ in readers]
        self._outcomes: list[Outcome | None] = [None] * len(readers)
        self._finished_at: dict[int, int] = {}    # rank -> exchanges it made
        self._waited: tuple[int, float] | None = None     # (exchange, seconds) that ranks have waited for it
        self._job_was_stopped = False       # every live rank was stopped at the last look
        self._last_look = time.monotonic()
        self._resumes = resumes
        self._selector = selectors.DefaultSelector()
        self._watches: dict[int, int] = {}      # rank -> its exit watch
        for rank, reader in enumerate(readers):
            self._selector.register(reader, selectors.EVENT_READ, (_OUT, rank))
            watch = watch_exit(children[rank])
            if watch is not None:
                self._watches[rank] = watch
                self._selector.register(watch, selectors.EVENT_READ, (_EXIT, rank))

    def watches(self) -> list[int]:
        """The exit watches' file descriptors, for the caller to close after
        `wait` (a rank forked meanwhile, by another run, must not keep them)."""
        return list(self._watches.values())

    def wait(self) -> list[Outcome]:
        try:
            while any(outcome is None for outcome in self._outcomes):
                for key, _ in self._selector.select(self._poll_interval()):
                    what, rank = key.data
                    if what == _OUT:
                        self._read(rank)
                    else:
                        self._ended(rank)
                self._watch()
            return cast("list[Outcome]", self._outcomes)     # every rank's, or _ended raised
        finally:
            self._selector.close()

    def _poll_interval(self) -> float | None:
        """How long to wait for the pipes before the next look at the ranks."""
        intervals = []
        if self._deadline is not None:
            intervals.append(max(0.0, self._deadline - time.monotonic()))
        if self._finished_at:
            intervals.append(_STRANDED_POLL_SECONDS)
        if self._sync_timeout is not None:
            intervals.append(min(1.0, self._sync_timeout / 10))
        if len(self._watches) < len(self._children):
            intervals.append(_EXIT_POLL_SECONDS)
        return min(intervals) if intervals else None

    def _watch(self) -> None:
        for rank in [rank for rank in self._children if rank not in self._watches]:
            if has_ended(self._children[rank]):
                self._ended(rank)
        if not self._children:
            return
        arrived, departed = self._shared.progress()
        if self._deadline is not None and self._timeout is not None and time.monotonic() >= self._deadline:
            raise self._run_timeout(arrived, departed, self._timeout)
        self._check_for_stranded_ranks(arrived)
        if self._sync_timeout is not None:
            self._check_sync_timeout(arrived, departed, self._sync_timeout)

    def _check_for_stranded_ranks(self, arrived: list[int]) -> None:
        """A rank that has finished did its last exchange; a rank that has
        entered a later exchange waits for it in vain.  The protocol rules
        this out; should it ever happen, end the run instead of hanging."""
        if not self._finished_at:
            return
        finisher, last = min(self._finished_at.items(), key=lambda item: item[1])
        for rank in self._children:
            if arrived[rank] > last:
                raise BSPError(f"rank {rank} waits at exchange {arrived[rank]}, which rank {finisher} "
                               f"left the run after exchange {last} and will never join (a bug in pybsp)")

    def _check_sync_timeout(self, arrived: list[int], departed: list[int], limit: float) -> None:
        live = sorted(self._children)
        exchange = max(arrived[rank] for rank in live)
        waiting = [rank for rank in live if arrived[rank] == exchange > departed[rank]]
        late = [rank for rank in live if arrived[rank] < exchange]
        elapsed = self._running_time(limit)
        if not (waiting and late):
            self._waited = None
            return
        if self._waited is None or self._waited[0] != exchange:
            self._waited = (exchange, 0.0)
            return
        stopped = [rank for rank in live if is_stopped(self._children[rank])]
        # A stop that reaches ranks that only wait (Ctrl-Z, SIGSTOP of every rank) stops the job: that
        # time does not count, nor the look after it (the ranks stop and resume one by one, so a look
        # may find some stopped and others not).  A late rank stopped alone is late like any other.
        job_stopped = any(rank in stopped for rank in waiting)
        if job_stopped or self._job_was_stopped:
            elapsed = 0.0
        self._job_was_stopped = job_stopped
        self._waited = (exchange, self._waited[1] + elapsed)
        if self._waited[1] > limit:
            superstep = self._shared.superstep(exchange, waiting[0])
            raise SyncTimeoutError(limit, late, waiting, superstep, [rank for rank in late if rank in stopped])

    def _running_time(self, limit: float) -> float:
        """Seconds since the last look at the ranks, less any time this
        process spent stopped (with the ranks: Ctrl-Z stops them all)."""
        now = time.monotonic()
        elapsed, self._last_look = now - self._last_look, now
        if self._resumes != resumes or elapsed > min(1.0, limit / 10) + _SUSPENSION_SLACK:
            self._resumes = resumes
            return 0.0
        return elapsed

    def _read(self, rank: int) -> None:
        chunk = os.read(self._readers[rank], _READ_CHUNK)
        if chunk:
            self._received[rank] += chunk
        else:
            self._ended(rank)

    def _drain(self, rank: int) -> None:
        """Read what an ended rank left in its pipe (no more than that: a
        process it started may hold the pipe open)."""
        reader = self._readers[rank]
        os.set_blocking(reader, False)
        try:
            while chunk := os.read(reader, _READ_CHUNK):
                self._received[rank] += chunk
        except BlockingIOError:
            pass

    def _ended(self, rank: int) -> None:
        """The rank's process ended (or is ending): end what it started, and
        take its Outcome; RankDiedError if it left none."""
        if rank not in self._children:
            return
        self._drain(rank)
        self._selector.unregister(self._readers[rank])
        if rank in self._watches:
            self._selector.unregister(self._watches[rank])
        pid = self._children.pop(rank)
        signal_group(pid)       # while the rank's zombie still holds its group's id
        status = reap(pid)
        received = self._received[rank]
        complete = len(received) >= 8 and int.from_bytes(received[:8], "little") == len(received) - 8
        if not complete or status not in (0, None):
            raise RankDiedError(rank, describe_exit(status))
        self._outcomes[rank] = from_block(memoryview(received)[8:])
        self._finished_at[rank] = self._shared.progress()[0][rank]

    def _run_timeout(self, arrived: list[int], departed: list[int], timeout: float) -> RunTimeoutError:
        waiting = [rank for rank in range(len(arrived)) if arrived[rank] > departed[rank]]
        computing = [rank for rank in range(len(arrived)) if arrived[rank] == departed[rank]]
        return RunTimeoutError(timeout, waiting, computing, max(departed))
