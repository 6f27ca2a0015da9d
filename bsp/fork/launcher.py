"""Forking the ranks of a run, and the supervisor that watches them.

The launching process makes the shared region and the barrier, forks every
rank before any of them starts work, and then supervises: each rank holds the
write end of a pipe of its own and nothing else, and writes its Outcome there
when it is done.  End of file on a pipe therefore means the rank's process
has ended; if no complete Outcome came first, the rank died, and the
supervisor kills the other ranks and raises RankDiedError.  However the run
ends (results, an error, a timeout, Ctrl-C in the launching process), no rank
process outlives it, and the shared memory goes with the last process.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import sys
import threading
import time
import traceback
from types import FrameType
from typing import Any, Callable, Iterator, NoReturn, Sequence, cast

from ..errors import BSPError, RankDiedError, RunTimeoutError, SyncTimeoutError
from ..outcome import Outcome
from .. import relay, stdio
from ..cores import share_cores, usable_cores
from ..watching import run_rank
from ..wire import from_block, to_frames
from ..transport import Buffer
from .barrier import Barrier, make_barrier
from .shared import SharedRegion
from .transport import ForkTransport

# Ranks spin this long at a barrier before they sleep, when each has a core.
SPIN_SECONDS = 1e-3
_READ_CHUNK = 1 << 20
_STRANDED_POLL_SECONDS = 0.2


def launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
           timeout: float | None = None, sync_timeout: float | None = None,
           profile: bool = False) -> list[Outcome]:
    """Run `program` on `nprocs` forked ranks; return their Outcomes in pid
    order (with each rank's record of its supersteps when `profile`).
    Raises RankDiedError if a rank's process dies, RunTimeoutError
    if the run outlives `timeout` seconds, SyncTimeoutError if ranks wait at
    a sync for more than `sync_timeout` seconds (None: no limit) for others
    that do not arrive."""
    with _stopped_by_sigterm():
        return _launch(program, args, kwargs, nprocs, timeout, sync_timeout, profile)


def _launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
            timeout: float | None, sync_timeout: float | None, profile: bool) -> list[Outcome]:
    shared = SharedRegion(nprocs)
    barrier = make_barrier(shared, usable_cores(), SPIN_SECONDS)
    pipes = [os.pipe() for _ in range(nprocs)]
    children: dict[int, int] = {}
    stdio.flush()
    output = relay.prepare(nprocs)
    try:
        for rank in range(nprocs):
            child = os.fork()
            if child == 0:
                _become_rank(rank, pipes, shared, barrier, program, args, kwargs, profile)
            children[rank] = child
        for _, writer in pipes:
            os.close(writer)
        pipes = [(reader, None) for reader, _ in pipes]  # type: ignore[misc]  # the writers are closed
        if output is not None:
            output.start()
        return _Supervisor(children, [reader for reader, _ in pipes], shared, timeout, sync_timeout).wait()
    finally:
        _kill_all(children)
        if output is not None:
            output.finish()
        for reader, writer in pipes:
            os.close(reader)
            if writer is not None:
                os.close(writer)
        barrier.close()
        shared.close()


class _Terminated(BaseException):
    """SIGTERM arrived in the launching process during a run."""


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """During a run, SIGTERM first stops the ranks and cleans up (as Ctrl-C
    does, through KeyboardInterrupt), then ends the process as SIGTERM
    would: a caller sees the usual status, 128 + 15.  A program that
    handles SIGTERM itself keeps its handler."""
    if threading.current_thread() is not threading.main_thread() \
            or signal.getsignal(signal.SIGTERM) is not signal.SIG_DFL:
        yield
        return

    def terminate(signum: int, frame: FrameType | None) -> NoReturn:
        raise _Terminated()

    signal.signal(signal.SIGTERM, terminate)
    try:
        yield
    except _Terminated:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        stdio.flush()
        os.kill(os.getpid(), signal.SIGTERM)
        raise
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL)


def _become_rank(rank: int, pipes: list[tuple[int, int]], shared: SharedRegion, barrier: Barrier,
                 program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 profile: bool) -> NoReturn:
    """The life of a rank process; never returns."""
    status = 1
    try:
        _die_with_parent()
        # Ctrl-C goes to the whole process group: the launching process
        # handles it, and ends the ranks.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_DFL)
        relay.become_rank(rank)
        stdio.write_whole_lines()
        share_cores(shared.nprocs, usable_cores())
        writer = pipes[rank][1]
        for reader, other_writer in pipes:
            os.close(reader)
            if other_writer != writer:
                os.close(other_writer)
        outcome = run_rank(ForkTransport(rank, shared, barrier), program, args, kwargs, profile)
        _write_frames(writer, to_frames(outcome))
        status = 0
    except BaseException:
        traceback.print_exc()       # a failure of pybsp itself, not of the program
    finally:
        stdio.flush()
        os._exit(status)


def _die_with_parent() -> None:
    if sys.platform.startswith("linux"):
        PR_SET_PDEATHSIG = 1
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)


def _write_frames(fd: int, frames: Sequence[Buffer]) -> None:
    total = sum(len(memoryview(frame).cast("B")) for frame in frames)
    os.write(fd, total.to_bytes(8, "little"))
    for frame in frames:
        view = memoryview(frame).cast("B")
        while view:
            view = view[os.write(fd, view):]


def _kill_all(children: dict[int, int]) -> None:
    for child in children.values():
        try:
            os.kill(child, signal.SIGKILL)
        except ProcessLookupError:
            pass
    for child in children.values():
        try:
            os.waitpid(child, 0)
        except ChildProcessError:
            pass
    children.clear()


def describe_exit(status: int) -> str:
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "an unknown signal"
        return f"killed by signal {number} ({name})"
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code} before finishing the program (os._exit, or a crash)"


class _Supervisor:
    """Reads the ranks' outcomes as they come, and watches them between
    reads: for a run past its time limit, ranks that wait at a sync for
    longer than the sync timeout, and ranks stranded at a barrier."""

    def __init__(self, children: dict[int, int], readers: list[int], shared: SharedRegion,
                 timeout: float | None, sync_timeout: float | None):
        self._children = children
        self._shared = shared
        self._timeout = timeout
        self._sync_timeout = sync_timeout or None
        self._deadline = None if timeout is None else time.monotonic() + timeout
        self._received = [bytearray() for _ in readers]
        self._outcomes: list[Outcome | None] = [None] * len(readers)
        self._finished_at: dict[int, int] = {}    # rank -> exchanges it made
        self._waited_since: tuple[int, float] | None = None     # (exchange, when) ranks began to wait
        self._selector = selectors.DefaultSelector()
        for rank, reader in enumerate(readers):
            self._selector.register(reader, selectors.EVENT_READ, rank)

    def wait(self) -> list[Outcome]:
        try:
            while self._selector.get_map():
                for key, _ in self._selector.select(self._poll_interval()):
                    self._read(key.fd, key.data)
                self._watch()
            return cast("list[Outcome]", self._outcomes)     # every rank's, or _read raised
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
        return min(intervals) if intervals else None

    def _watch(self) -> None:
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
        if not (waiting and late):
            self._waited_since = None
            return
        now = time.monotonic()
        if self._waited_since is None or self._waited_since[0] != exchange:
            self._waited_since = (exchange, now)
        elif now - self._waited_since[1] > limit:
            superstep = self._shared.superstep(exchange, waiting[0])
            raise SyncTimeoutError(limit, late, waiting, superstep)

    def _read(self, reader: int, rank: int) -> None:
        chunk = os.read(reader, _READ_CHUNK)
        if chunk:
            self._received[rank] += chunk
            return
        self._selector.unregister(reader)
        _, status = os.waitpid(self._children.pop(rank), 0)
        received = self._received[rank]
        complete = len(received) >= 8 and int.from_bytes(received[:8], "little") == len(received) - 8
        if status != 0 or not complete:
            raise RankDiedError(rank, describe_exit(status))
        self._outcomes[rank] = from_block(memoryview(received)[8:])
        self._finished_at[rank] = self._shared.progress()[0][rank]

    def _run_timeout(self, arrived: list[int], departed: list[int], timeout: float) -> RunTimeoutError:
        waiting = [rank for rank in range(len(arrived)) if arrived[rank] > departed[rank]]
        computing = [rank for rank in range(len(arrived)) if arrived[rank] == departed[rank]]
        return RunTimeoutError(timeout, waiting, computing, max(departed))
