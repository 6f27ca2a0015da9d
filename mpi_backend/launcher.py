"""`bsp.run` under an MPI launcher (mpiexec, mpirun, srun).

Every process of the job runs the script up to its first `bsp.run` call.
There rank 0, the launching process, carries on, and every other rank
becomes a server: from then on it runs only what rank 0 asks of it, one run at
a time, and leaves when rank 0 ends.  So the code after `bsp.run` runs once,
on rank 0, exactly as under the fork backend (BSPlib's `bsp_init` works the
same way: processes other than 0 only run the SPMD part).

Each `bsp.run` on rank 0:

1. broadcasts the call (program, arguments, nprocs) to the servers, pickled
   (dill for what pickle refuses), after rank 0's module state: a server's
   `__main__` stopped at its first `bsp.run` call, and it takes over rank
   0's functions, classes and the globals they use (see
   bsp.core.main_namespace), so that every rank sees one `__main__`, with
   what rank 0 defined since.  The call's functions and classes of
   `__main__` then travel by name.  A server that cannot rebuild the call
   fails the run with a RemoteError that says so;
2. every rank below nprocs runs the program on a communicator of its own,
   split from a duplicate of COMM_WORLD;
3. the outcomes travel to rank 0, which returns the results or raises (each
   outcome carries its rank's record of the supersteps, when profiled).

When rank 0 ends (normally, or by an uncaught exception), its last act is to
tell the servers, which finalize MPI and exit with its status: the job ends
promptly, with the failing rank's traceback printed once, by rank 0.
"""

from __future__ import annotations

import atexit
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from types import FrameType, TracebackType
from typing import TYPE_CHECKING, Any, Callable, Iterator, NoReturn, Sequence

import numpy as np

from bsp.launch import stdio
from bsp.core import main_namespace, wire
from bsp.launch.cores import cores_shared, share_cores, usable_cores
from bsp.errors import BSPError, SyncTimeoutError
from bsp.launch.launcher import ONE_RUN_AT_A_TIME
from bsp.launch.mpi_environment import job_size
from bsp.launch.outcome import Outcome
from bsp.launch.rank_runner import Interrupted
from bsp.launch.signals import replaced
from bsp.core.transport import RECORD_SIZE
from bsp.launch.observers import run_rank

from mpi_backend.abort import abort_job, mapped_shared_memory_files
from mpi_backend.descendants import adopting_orphans, end_descendants
from mpi_backend.transport import MPI, MPITransport

if TYPE_CHECKING:
    from bsp.core.transport import Buffer
    from bsp.world import World

_RUN, _SHUTDOWN = 1, 2
_IDLE_POLL_SECONDS = (1e-5, 5e-3)
_UNLINKED_EARLY = "mpich_shm_"           # MPICH's intra-node shared memory (see _unlink_shared_memory_names)
_OUTPUT_SECONDS = 2.0                  # the most a rank waits for the launcher to read its output      # a server waiting for rank 0 backs off to this

PID = os.getpid()                   # the process that initialized MPI (importing mpi4py's MPI)
_control: MPI.Comm | None = None
_exit_status = 0
_shut_down = False
_lost: BSPError | None = None       # why the job cannot run more, after a sync timeout
_node_share = (1, 1)                # rank 0's (ranks sharing its node's cores, cores), for its runs
_one_run = threading.Lock()         # held by rank 0's run in progress


def world_size() -> int:
    return MPI.COMM_WORLD.Get_size()


def is_root() -> bool:
    return MPI.COMM_WORLD.Get_rank() == 0


def launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
           sync_timeout: float | None = None, profile: bool = False) -> list[Outcome]:
    """On rank 0: run `program` on ranks 0..nprocs-1 of the job and return
    their Outcomes (with each rank's record of its supersteps when
    `profile`).  `sync_timeout`: see bsp.run.  Raises BSPError once a run
    has lost ranks to a sync timeout: they are stuck, and only the end of
    the job ends them; and BSPError while another thread's run is in
    progress (one at a time)."""
    if not _one_run.acquire(blocking=False):
        raise BSPError(ONE_RUN_AT_A_TIME)
    try:
        return _launch(program, args, kwargs, nprocs, sync_timeout, profile)
    finally:
        _one_run.release()


def _launch(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
            sync_timeout: float | None, profile: bool) -> list[Outcome]:
    if _lost is not None:
        raise BSPError(f"this MPI job can run nothing more: an earlier run lost ranks ({_lost})")
    control = _control_comm()
    if nprocs > control.Get_size():
        raise ValueError(f"nprocs={nprocs}, but this MPI job has only {control.Get_size()} ranks")
    block = _joined(wire.to_frames((main_namespace.snapshot(), wire.Serialized.of((program, args, kwargs)))))
    _broadcast(control, _RUN, nprocs, block, sync_timeout, profile)
    try:
        with cores_shared(*_node_share), _ctrl_c_interrupts():
            outcomes = _execute(control, nprocs, block, sync_timeout, profile)
    except Interrupted:
        # The other ranks are in the middle of the run: only ending the job stops them.
        print("KeyboardInterrupt: ending the MPI job", file=sys.stderr, flush=True)
        abort_job(128 + signal.SIGINT)
    assert outcomes is not None         # rank 0 collects them all
    return outcomes


@contextlib.contextmanager
def _ctrl_c_interrupts() -> Iterator[None]:
    """During a run on rank 0, Ctrl-C (SIGINT) raises Interrupted, which
    ends the job, where a KeyboardInterrupt the program raises is that
    rank's failure (a RemoteError) like any other exception.  A program
    that handles SIGINT itself keeps its handler."""
    def interrupt(signum: int, frame: FrameType | None) -> NoReturn:
        raise Interrupted()

    with replaced(signal.SIGINT, interrupt, expected=signal.default_int_handler):
        yield


def serve() -> None:
    """On every rank but 0: run what rank 0 asks for; never returns.
    Ctrl-C reaches every rank of a job; on these it is ignored, rank 0 decides."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    stdio.unmute()
    control = _control_comm()
    while True:
        kind, number, sync_timeout, profile, block = _receive(control)
        if kind == _SHUTDOWN:
            _leave(number)
        _execute(control, number, block, sync_timeout, profile)


def join_servers() -> None:
    """On rank 0, when every other rank is in `serve`: make the control
    communicator they wait in now (shutdown needs it even if no run came)."""
    _control_comm()


def shutdown(status: int = 0) -> None:
    """On rank 0: tell the servers to exit with `status`.  Runs by itself
    when rank 0's interpreter exits; call it to choose the status."""
    global _shut_down
    if _shut_down or _control is None or not is_root():
        return
    _shut_down = True
    if _lost is not None:
        abort_job(status or 1)                  # the servers are stuck in a lost run
    _broadcast(_control, _SHUTDOWN, status, _joined([]))


@contextlib.contextmanager
def _call_of_the_run(block: memoryview | np.ndarray, rank: int) -> Iterator[tuple[Any, ...]]:
    """The call (program, args, kwargs) rank 0 broadcast, in the `__main__`
    of the run: the servers adopt rank 0's module state, which came with
    the call (see bsp.core.main_namespace), and rank 0 runs on a copy of
    it, as every other rank does (and every rank of the fork backend):
    what the program changes, in its arguments or in module globals, stays
    in the run.  Then the call's functions and classes of `__main__`, sent
    by name, resolve alike on every rank.  A call that cannot be rebuilt
    is a program that fails the run saying why."""
    state, call = wire.from_block(block.data if isinstance(block, np.ndarray) else block)
    if rank != 0:
        yield _load_call(state, call)
        return
    with main_namespace.apart(state):
        yield _load_call(None, call)


def _load_call(state: bytes | None, call: wire.Serialized) -> tuple[Any, ...]:
    """The call, after adopting rank 0's module `state` (when given)."""
    try:
        if state is not None:
            main_namespace.adopt(state)
        loaded: tuple[Any, ...] = call.load()
        return loaded
    except Exception as error:
        return _unloadable(error), (), {}


def _unloadable(error: Exception) -> Callable[..., Any]:
    """A program that fails the run, on a server that could not rebuild the
    program rank 0 sent, with the reason."""
    def program(world: World) -> NoReturn:
        raise BSPError(
            f"rank {world.pid} could not rebuild the program sent by rank 0: "
            f"{type(error).__name__}: {error}.  Under MPI the other ranks stop reading the script at "
            f"its first bsp.run call, and rank 0 brings over at each run the script's functions, "
            f"classes and the names they use, as far as they can be pickled (see "
            f"bsp.core.main_namespace).")
    return program


def _execute(control: MPI.Comm, nprocs: int, block: memoryview | np.ndarray,
             sync_timeout: float | None, profile: bool) -> list[Outcome] | None:
    """Run the call in `block` on ranks 0..nprocs-1 of `control`; on rank
    0, return their Outcomes."""
    rank = control.Get_rank()
    comm = control.Split(0 if rank < nprocs else MPI.UNDEFINED, rank)
    if comm == MPI.COMM_NULL:
        return None
    transport = MPITransport(comm, sync_timeout)
    try:
        with _call_of_the_run(block, rank) as (program, args, kwargs):
            outcome = _run(transport, program, args, kwargs, profile)
            if isinstance(outcome.error, SyncTimeoutError):
                return [outcome] if rank == 0 else None
            # pickled in the run's __main__: its classes travel by name (see _call_of_the_run)
            outgoing = {0: wire.to_frames(outcome)}
        _, incoming = transport.exchange(outgoing, bytes(RECORD_SIZE))
        if rank != 0:
            return None
        # each rank sent rank 0 one block: in one piece, or in several when
        # parts of it were handed over through the node's shared window
        outcomes = []
        for source in range(nprocs):
            pieces = incoming[source]       # every rank sent rank 0 its outcome
            outcomes.append(wire.from_block(pieces[0] if len(pieces) == 1 else _joined(pieces).data))
        return outcomes
    except BaseException:
        # Ctrl-C on rank 0 (Interrupted), SIGTERM: the job is ending, and the
        # other ranks are where they were; a collective clean-up would wait
        # for them forever.
        transport.abandon()
        raise
    finally:
        transport.close()
        comm.Free()


def _run(transport: MPITransport, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
         profile: bool) -> Outcome:
    """This rank's Outcome of the program, with what it printed passed on
    to the launcher."""
    global _lost
    try:
        with adopting_orphans():        # a daemon the program starts stays a descendant
            outcome = run_rank(transport, program, args, kwargs, profile)
    finally:
        end_descendants()       # what the program started ends with its run
    if outcome.error is not None:
        # Drop the program's frames (and what they hold, arrays in the
        # node's window among it: see shared_window), as on fork, where
        # the error reaches the launching process without them.
        outcome.error.__traceback__ = None
    if isinstance(outcome.error, SyncTimeoutError):
        _lost = outcome.error           # the late ranks will not hand in outcomes
        return outcome
    # What the ranks printed reaches the launcher before rank 0 has the
    # results, so it comes out before anything rank 0 prints after the run.
    stdio.flush()
    stdio.wait_until_read(_OUTPUT_SECONDS)
    return outcome


def _control_comm() -> MPI.Comm:
    """The job's duplicate of COMM_WORLD for pybsp, made on first use
    (collectively: every rank's first bsp.run)."""
    global _control
    if _control is None:
        _check_launcher_matches()
        stdio.write_whole_lines()
        _control = MPI.COMM_WORLD.Dup()
        _control.Barrier()          # every rank is out of the Dup, and has mapped what it made
        _unlink_shared_memory_names()
        _share_the_node()
        _check_string_hashes(_control)
        if _control.Get_rank() == 0:
            _record_uncaught_exceptions()
            atexit.register(lambda: shutdown(_exit_status))
    return _control


def _unlink_shared_memory_names() -> None:
    """Unlink the names of MPICH's shared memory files in /dev/shm, which
    MPICH keeps until MPI_Finalize: a job killed before that (SIGKILL of
    its launcher) would leave them for good.  Every rank of the node has
    mapped them by now (the barrier before this follows MPI_Init and the
    Dup on every rank), and the memory stays until the last one unmaps it.
    Open MPI's peers map their segments later, on first use: not those."""
    for path in mapped_shared_memory_files():
        if os.path.basename(path).startswith(_UNLINKED_EARLY):
            try:
                os.unlink(path)
            except OSError:         # another rank of the node was first
                pass


def _share_the_node() -> None:
    """Limit this rank's thread pools to its share of the node's cores
    (see bsp.launch.cores): the node's cores over the ranks on it, unless the
    launcher bound this rank to cores of its own (its affinity is less than
    the node), which are then its share.  Rank 0 runs the script's code
    outside runs too, which must see the thread pools the fork backend's
    launching process sees: it takes its share during its runs only.
    Collective."""
    global _node_share
    node = MPI.COMM_WORLD.Split_type(MPI.COMM_TYPE_SHARED)
    ranks_here = node.Get_size()
    node.Free()
    cores = usable_cores()
    _node_share = (ranks_here if cores == (os.cpu_count() or cores) else 1, cores)
    if not is_root():       # rank 0 shares them during its runs only (see launch)
        share_cores(*_node_share)


def _check_string_hashes(control: MPI.Comm) -> None:
    """Warn when the ranks hash strings differently (each process draws
    its own hash seed unless PYTHONHASHSEED sets one): a program that
    partitions data by hash() would be silently wrong.  Whether a program
    does cannot be seen, so the rule is: once per job, from rank 0, only
    when the seeds differ, which `bsp run --mpi` never lets happen (it
    gives the job one seed; `bsp doctor` says so).  Collective: one
    allgather, at the first bsp.run."""
    if len(set(control.allgather(hash("pybsp")))) > 1 and control.Get_rank() == 0:
        print("pybsp: warning: the ranks of this MPI job hash strings differently (PYTHONHASHSEED is not set), "
              "so a program that splits data by hash() gets wrong answers: run it with bsp run --mpi, which "
              "gives the job one seed, or PYTHONHASHSEED=0 mpiexec ...", file=sys.stderr, flush=True)


def _check_launcher_matches() -> None:
    expected = _launcher_size()
    if expected > 1 and MPI.COMM_WORLD.Get_size() == 1:
        raise BSPError(
            f"the MPI launcher started {expected} processes, but mpi4py's MPI sees a job of 1: "
            f"every rank believes it is rank 0 of 1.  The launcher belongs to another MPI than the "
            f"one mpi4py uses ({MPI.Get_library_version().splitlines()[0].strip()}).  Run with the "
            f"launcher of mpi4py's MPI (`bsp run --mpi` finds it; `bsp doctor` shows both), or make "
            f"mpi4py use your launcher's MPI (pip install --no-binary mpi4py --force-reinstall mpi4py).")


def _launcher_size() -> int:
    return job_size(allocation=False) or 0


def _record_uncaught_exceptions() -> None:
    """Let the servers exit non-zero when rank 0 dies of an exception."""
    previous = sys.excepthook

    def hook(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
        global _exit_status
        _exit_status = 1
        previous(kind, value, traceback)

    sys.excepthook = hook


def _joined(frames: Sequence[Buffer]) -> np.ndarray:
    """Frames as one block of writable memory (so that arrays rebuilt from
    it are writable, as they are on the servers)."""
    views = [memoryview(frame).cast("B") for frame in frames]
    block = np.empty(sum(view.nbytes for view in views), np.uint8)
    position = 0
    for view in views:
        block[position:position + view.nbytes] = view
        position += view.nbytes
    return block


def _broadcast(control: MPI.Comm, kind: int, number: int, payload: np.ndarray,
               sync_timeout: float | None = None, profile: bool = False) -> None:
    """Rank 0 to the servers: a kind of message, a number (nprocs of a run,
    status of a shutdown), the run's sync timeout, whether it is profiled,
    and a block of bytes.  The sync timeout travels outside the block
    because it decides which collective calls a run makes (SyncWatch): a
    server that cannot unpickle the block must still make the same ones as
    rank 0.  The profile flag travels beside it, as every rank needs it."""
    header = np.array([kind, number, payload.nbytes, sync_timeout or 0.0, profile], np.float64)
    control.Ibcast(header, root=0).Wait()
    control.Bcast([payload, MPI.BYTE], root=0)


def _receive(control: MPI.Comm) -> tuple[int, int, float | None, bool, memoryview]:
    header = np.empty(5, np.float64)
    _wait_idly(control.Ibcast(header, root=0))
    kind, number, size, sync_timeout, profile = header.tolist()
    payload = np.empty(int(size), np.uint8)
    control.Bcast([payload, MPI.BYTE], root=0)
    return int(kind), int(number), sync_timeout or None, bool(profile), payload.data


def _wait_idly(request: MPI.Request) -> None:
    """Wait for rank 0 without spinning a core: between runs a server may
    wait long, and on a shared node its spinning would slow rank 0 down."""
    delay, longest = _IDLE_POLL_SECONDS
    while not request.Test():
        time.sleep(delay)
        delay = min(2 * delay, longest)


def _leave(status: int) -> None:
    """End a server process without running any more of the script (no
    Python exit handlers, no finally blocks), but with the C library's exit
    handlers: MPICH removes its shared memory files in one, which os._exit
    would skip."""
    stdio.flush()
    MPI.Finalize()
    ctypes.CDLL(None).exit(status)
