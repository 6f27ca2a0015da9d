"""Forking the ranks of a run.

The launching process makes the shared region and the barrier, forks every
rank before any of them starts work, and hands the run to the supervisor
(see `supervisor`): each rank holds the write end of a pipe of its own, of
this run's descriptors, and writes its Outcome there when it is done.
However the run ends (results, an error, a timeout, Ctrl-C or SIGTERM in
the launching process), no rank process, nor anything a rank started,
outlives it: surviving ranks get SIGTERM and a moment to clean up, then
their process groups get SIGKILL, and so do the orphans (daemons) that the
launching process adopted meanwhile (see `processes`).  A rank dies with the
launching process.  The shared memory goes with the last process.

Runs may overlap, from several threads: each rank closes the descriptors of
every other run in progress, so that no run waits for another's ranks.
"""

from __future__ import annotations

import contextlib
import os
import signal
import threading
import traceback
from types import FrameType
from typing import Any, Callable, Iterator, NoReturn, Sequence

from bsp.errors import BSPError
from bsp.launch.outcome import Outcome
from bsp.launch import output_relay
from bsp.launch import stdio
from bsp.launch.signals import replaced
from bsp.launch.cores import load_limiter, share_cores, usable_cores
from bsp.launch.rank_runner import Stopped
from bsp.launch.observers import run_rank
from bsp.core.wire import to_frames
from bsp.core.transport import Buffer
from bsp.fork import processes, supervisor
from bsp.fork.barrier import Barrier, make_barrier
from bsp.fork.shared import SharedRegion
from bsp.fork.transport import ForkTransport

# Ranks spin this long at a barrier before they sleep, when each has a core.
# Long enough to ride out the rank awaited losing its core for a while to
# another program (a busy laptop, a shared node): a sleeping rank takes a
# scheduler's time slice to wake, while one that spins (as MPI libraries'
# ranks do) is there the moment the other arrives.  With a CPU-bound
# process beside 2 ranks on 2 cores, a one-message superstep took 96-189 us
# spinning 1 ms (or yielding the core after 50 us), 44-121 us spinning 20 ms.
SPIN_SECONDS = 20e-3

_forking = threading.Lock()         # one run forks at a time, so that it knows every other run's descriptors
_descriptors: set[int] = set()      # the launching process's descriptors of the runs in progress
_ranks: dict[int, list[int]] = {}   # id of a run in progress -> its ranks' pids (for Ctrl-Z)


def launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
           timeout: float | None = None, sync_timeout: float | None = None,
           profile: bool = False) -> list[Outcome]:
    """Run `program` on `nprocs` forked ranks; return their Outcomes in pid
    order (with each rank's record of its supersteps when `profile`).
    Raises RankDiedError if a rank's process dies, RunTimeoutError
    if the run outlives `timeout` seconds, SyncTimeoutError if ranks wait at
    a sync for more than `sync_timeout` seconds (None: no limit) for others
    that do not arrive (time the job spends stopped does not count), and
    BSPError when the system lacks what the run needs (file descriptors,
    processes, memory), saying which."""
    with processes.adopting_orphans(), _stopped_by_sigterm(), _children_kept(), _stopped_together():
        return _launch(program, args, kwargs, nprocs, timeout, sync_timeout, profile)


def _launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
            timeout: float | None, sync_timeout: float | None, profile: bool) -> list[Outcome]:
    processes.check_descriptors(nprocs, output_relay.needed())
    children: dict[int, int] = {}
    mine: list[int] = []        # this run's descriptors in the launching process
    shared = barrier = output = None
    launcher = os.getpid()
    stdio.flush()
    try:
        shared = _made(lambda: SharedRegion(nprocs), nprocs, "the run's shared memory")
        barrier = _made(lambda: make_barrier(shared, usable_cores(), SPIN_SECONDS), nprocs, "the run's semaphores")
        output = output_relay.prepare(nprocs)
        load_limiter()
        with _forking:
            pipes = _pipes(nprocs, mine)
            for rank in range(nprocs):
                children[rank] = _fork(rank, nprocs)
                if children[rank] == 0:
                    _become_rank(rank, launcher, pipes, shared, barrier, program, args, kwargs, profile)
                _own_group(children[rank])
            _ranks[id(children)] = list(children.values())
            for _, writer in pipes:
                _close(writer, mine)
        if output is not None:
            output.start()
        watch = supervisor.Supervisor(children, [reader for reader, _ in pipes], shared, timeout, sync_timeout)
        _keep(watch.watches(), mine)
        return watch.wait()
    finally:
        processes.end_ranks(children.values())
        _ranks.pop(id(children), None)
        if output is not None:
            output.finish()
        for fd in list(mine):
            _close(fd, mine)
        if barrier is not None:
            barrier.close()
        if shared is not None:
            shared.close()


def _made(make: Callable[[], Any], nprocs: int, what: str) -> Any:
    try:
        return make()
    except OSError as error:
        raise processes.explain(error, nprocs, what) from None


def _pipes(nprocs: int, mine: list[int]) -> list[tuple[int, int]]:
    """A pipe per rank, for its Outcome; its descriptors are the run's."""
    pipes = []
    for _ in range(nprocs):
        pipe = _made(os.pipe, nprocs, "the ranks' pipes")
        _keep(pipe, mine)
        pipes.append(pipe)
    return pipes


def _fork(rank: int, nprocs: int) -> int:
    try:
        return os.fork()
    except OSError as error:
        raise processes.explain(error, nprocs, f"rank {rank} of {nprocs}") from None


def _own_group(child: int) -> None:
    """Make the child lead a group of its own from here too (whichever of
    parent and child gets there first), so that no rank is ever ended
    without its group."""
    try:
        os.setpgid(child, child)
    except OSError:         # it did so itself already, or ended
        pass


def _keep(fds: Sequence[int], mine: list[int]) -> None:
    mine.extend(fds)
    _descriptors.update(fds)


def _close(fd: int, mine: list[int]) -> None:
    mine.remove(fd)
    _descriptors.discard(fd)
    os.close(fd)


class _Terminated(BaseException):
    """SIGTERM arrived in the launching process during a run."""


@contextlib.contextmanager
def _stopped_by_sigterm() -> Iterator[None]:
    """During a run, SIGTERM first stops the ranks and cleans up (as Ctrl-C
    does, through KeyboardInterrupt), then ends the process as SIGTERM
    would: a caller sees the usual status, 128 + 15.  A program that
    handles SIGTERM itself keeps its handler."""
    def terminate(signum: int, frame: FrameType | None) -> NoReturn:
        raise _Terminated()

    with replaced(signal.SIGTERM, terminate):
        try:
            yield
        except _Terminated:
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            stdio.flush()
            os.kill(os.getpid(), signal.SIGTERM)
            raise


@contextlib.contextmanager
def _children_kept() -> Iterator[None]:
    """During a run, the ranks stay waitable even when the program set
    SIGCHLD to SIG_IGN (which would reap them unseen): SIG_DFL, which
    ignores SIGCHLD too, but keeps each child's exit status."""
    with replaced(signal.SIGCHLD, signal.SIG_DFL, expected=signal.SIG_IGN):
        yield


@contextlib.contextmanager
def _stopped_together() -> Iterator[None]:
    """During a run, Ctrl-Z (SIGTSTP) stops the ranks, each in its process
    group of its own, with the launching process, and SIGCONT (fg, bg)
    resumes them with it; the supervisor does not count the time stopped
    towards the sync timeout.  A program that handles either signal itself
    keeps its handler."""
    def stop(signum: int, frame: FrameType | None) -> None:
        _signal_ranks(signal.SIGSTOP)
        signal.signal(signal.SIGTSTP, signal.SIG_DFL)
        os.kill(os.getpid(), signal.SIGTSTP)       # stops here, until SIGCONT
        signal.signal(signal.SIGTSTP, stop)

    def resume(signum: int, frame: FrameType | None) -> None:
        supervisor.resumes += 1
        _signal_ranks(signal.SIGCONT)

    with replaced(signal.SIGTSTP, stop), replaced(signal.SIGCONT, resume):
        yield


def _signal_ranks(sig: int) -> None:
    for ranks in list(_ranks.values()):
        for pid in ranks:
            processes.signal_group(pid, sig)


def _become_rank(rank: int, launcher: int, pipes: list[tuple[int, int]], shared: SharedRegion, barrier: Barrier,
                 program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                 profile: bool) -> NoReturn:
    """The life of a rank process; never returns."""
    status = 1
    try:
        processes.become_group_leader()
        processes.die_with(launcher)
        # Ctrl-C goes to the launching process, which ends the ranks;
        # SIGTERM is how it ends them, letting the program clean up first.
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, _stop)
        for stop in (signal.SIGTSTP, signal.SIGCONT):
            signal.signal(stop, signal.SIG_DFL)
        output_relay.become_rank(rank)
        stdio.write_whole_lines()
        share_cores(shared.nprocs, usable_cores())
        writer = pipes[rank][1]
        for fd in _descriptors - {writer}:     # this run's other pipes, and every other run's
            os.close(fd)
        outcome = run_rank(ForkTransport(rank, shared, barrier), program, args, kwargs, profile)
        _write_frames(writer, to_frames(outcome))
        status = 0
    except Stopped:
        status = 128 + signal.SIGTERM
    except BaseException:
        traceback.print_exc()       # a failure of pybsp itself, not of the program
    finally:
        stdio.flush()
        os._exit(status)


def _stop(signum: int, frame: FrameType | None) -> NoReturn:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)     # a second SIGTERM ends the rank at once
    raise Stopped()


def _write_frames(fd: int, frames: Sequence[Buffer]) -> None:
    total = sum(len(memoryview(frame).cast("B")) for frame in frames)
    os.write(fd, total.to_bytes(8, "little"))
    for frame in frames:
        view = memoryview(frame).cast("B")
        while view:
            view = view[os.write(fd, view):]


