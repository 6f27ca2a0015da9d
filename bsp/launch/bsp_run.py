"""`bsp.run`: choose a backend and a number of ranks, run a program, return
its results to the launching process."""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
from typing import (TYPE_CHECKING, Any, Callable, Concatenate, Iterator, Literal, ParamSpec, TypedDict,
                    TypeVar, Union, cast, overload)

from bsp.launch.backends import BACKENDS, launcher as backend_launcher
from bsp.checkpoint.save import checkpointing
from bsp.base.tracebacks import FOR_THE_USER, debugging
from bsp.base.argument_checks import check_callable, check_nprocs
from bsp.launch.cores import usable_cores
from bsp.errors import BSPError
from bsp.launch.mpi_environment import job_size, launched_by_mpi
from bsp.launch.outcome import resolve
from bsp.launch.launcher import ONE_RUN_AT_A_TIME
from bsp.launch.profile_request import request as profile_request
from bsp.launch.rank_runner import current_engine, running_a_rank
from bsp.recordings.recording import choose_path as record_path, session as recording
from bsp.launch.signature import check_program_call

if TYPE_CHECKING:
    from typing_extensions import Unpack

    from bsp.observe.profile import Profile
    from bsp.world import World


DEFAULT_SYNC_TIMEOUT = 600.0
runs_started = 0        # bsp.run calls this process made (`bsp run -n` checks that there was one)
_turned_off: str | None = None      # why bsp.run starts nothing now (see runs_turned_off)


class RunTurnedOff(BaseException):
    """What bsp.run raises, starting nothing, inside `runs_turned_off`: a
    BaseException, so that the script's own `except Exception` lets it by."""


@contextlib.contextmanager
def runs_turned_off(why: str) -> Iterator[None]:
    """While inside: every bsp.run (in any thread) raises RunTurnedOff
    saying `why`, and starts no rank (`bsp replay --from-file` reads a
    script's definitions so)."""
    global _turned_off
    previous, _turned_off = _turned_off, why
    try:
        yield
    finally:
        _turned_off = previous


P = ParamSpec("P")
R = TypeVar("R")
A1 = TypeVar("A1")
A2 = TypeVar("A2")
A3 = TypeVar("A3")
A4 = TypeVar("A4")


class RunOptions(TypedDict, total=False):
    """bsp.run's own keywords, for type checkers (see `run`)."""

    nprocs: int | None
    backend: str | None          # "fork" or "mpi"
    sync_timeout: float | None
    profile: Union[bool, str, "os.PathLike[str]", Callable[[Profile], object], None]
    trace: Union[str, "os.PathLike[str]", None]
    record: Union[str, "os.PathLike[str]", None]
    checkpoint: Union[str, "os.PathLike[str]", Literal[False], None]      # False: none, whatever BSP_CHECKPOINT says
    resume: Literal["force"] | None      # "force": resume from the checkpoint of a program changed on purpose


F = TypeVar("F", bound=Callable[..., Any])


def user_facing(function: F) -> F:
    """`function`, raising the errors it raises for the user without
    pybsp's frames below it (the launcher, the supervisor, the checks),
    which the user did not write (see bsp.base.tracebacks; BSP_DEBUG=1
    keeps them).  What a rank's program raised travels inside a
    RemoteError, as its text, trimmed so as well."""
    @functools.wraps(function)
    def shown(*args: Any, **kwargs: Any) -> Any:
        try:
            return function(*args, **kwargs)
        except FOR_THE_USER as error:
            if debugging():
                raise
            # the same error, its traceback from the caller's line on
            raise error.with_traceback(None)
    return cast(F, shown)


# How a type checker sees bsp.run.  Python cannot type "the program's own
# parameters, plus bsp.run's keywords" in one signature (ParamSpec allows no
# keyword between *args and **kwargs), so: a call without bsp.run's
# keywords is checked against the program's whole signature; a call with
# them, against its positional parameters (up to four), and any other
# keyword is an error.  Program keywords together with bsp.run's: pass them
# with functools.partial.
@overload
def run(program: Callable[Concatenate[World, P], R], /, *args: P.args, **kwargs: P.kwargs) -> list[R]: ...
@overload
def run(program: Callable[[World], R], /, **options: Unpack[RunOptions]) -> list[R]: ...
@overload
def run(program: Callable[[World, A1], R], a1: A1, /, **options: Unpack[RunOptions]) -> list[R]: ...
@overload
def run(program: Callable[[World, A1, A2], R], a1: A1, a2: A2, /, **options: Unpack[RunOptions]) -> list[R]: ...
@overload
def run(program: Callable[[World, A1, A2, A3], R], a1: A1, a2: A2, a3: A3, /,
        **options: Unpack[RunOptions]) -> list[R]: ...
@overload
def run(program: Callable[[World, A1, A2, A3, A4], R], a1: A1, a2: A2, a3: A3, a4: A4, /,
        **options: Unpack[RunOptions]) -> list[R]: ...


# (mypy: in the first overload a program keyword may share a name with one
# of bsp.run's; at run time bsp.run keeps it, see the docstring.)
@user_facing  # type: ignore[misc]
def run(program: Callable[..., Any], /, *args: Any, nprocs: int | None = None,
        backend: str | None = None, sync_timeout: float | None = None, profile: Any = None,
        trace: Any = None, checkpoint: Any = None, record: Any = None, resume: Any = None,
        **kwargs: Any) -> list[Any]:
    """Run `program(world, *args, **kwargs)` on every rank and return the
    list of the ranks' return values, in pid order, to the launching process.

    `backend` is "fork" (ranks are processes forked from this one) or "mpi"
    (the ranks of the MPI job this process belongs to); None chooses: the
    BSP_BACKEND environment variable if set, else "mpi" when the process was
    started by an MPI launcher, else "fork".  `nprocs` defaults to
    BSP_NPROCS if set, else, for fork, the number of usable cores, and for
    MPI, the size of the job (a smaller nprocs leaves the other ranks idle).

    Under MPI, rank 0 is the launching process: the other ranks never return
    from their first call, but run every later call of rank 0 with it, and
    exit when rank 0 does.

    `sync_timeout`: seconds that ranks may wait at a sync for the others
    before the run ends with SyncTimeoutError naming the ranks that did not
    arrive; None takes BSP_SYNC_TIMEOUT, else 600; 0 turns it off.

    `profile`: record every superstep of every rank (compute time, bytes and
    messages, time in the sync, call site; see [`bsp.observe.profile`][]) and, at the end,
    True: print the table of supersteps with the BSP prediction on stderr,
    g and l from the file BSP_MACHINE names, else measured on the spot;
    a path: the same, g and l from that file (written by `bsp bench --out`);
    a function: call it with the [`Profile`][bsp.observe.profile.Profile] instead.  None takes
    BSP_PROFILE (1 or 0).  `trace`: the path of a Chrome trace file to write
    (see [`bsp.observe.trace`][]); None takes BSP_TRACE.  Profiling costs each rank a few
    microseconds per superstep; off, nothing.

    `checkpoint`: a directory (created 0700 if missing) where
    `world.save(...)` writes checkpoints and from which `world.restore()`
    reads the last one back (see [`bsp.checkpoint.save`][]); None takes BSP_CHECKPOINT,
    False turns it off.  It belongs to one program: CheckpointError, before
    anything runs, for a directory holding another program's checkpoints, a
    newer format, or files pybsp did not write.  A program is known by its
    code and its file's contents: `resume="force"` resumes from the
    checkpoint of another program (this one, changed on purpose).  A
    checkpoint may hold pickles, which run code when restored: it is
    trusted code, and a directory another user owns or could write is
    refused.

    `record`: the path of a file in which to record what arrived at every
    rank in every superstep, so that `bsp.replay(path, rank=r)` can rerun
    rank r alone (see [`bsp.replay`][]); None takes BSP_RECORD.  The file is
    written when the run ends, however it ends.  Recording costs each rank a
    digest of what it sends and a write of what it receives: the record is
    about as large as all the bytes the ranks received.

    The keywords nprocs, backend, sync_timeout, profile, trace, checkpoint,
    record and resume are bsp.run's own: they never reach the program.  A program that takes a
    parameter named profile or trace gets a TypeError here if the option is
    given; pass it with functools.partial(program, profile=...) instead.

    Raises RemoteError if a rank raised, SyncMismatchError if the ranks
    disagreed about a superstep, RankDiedError if a rank's process died,
    SyncTimeoutError as above; TypeError and ValueError for bad options,
    before anything runs, and TypeError when the program cannot be called
    as program(world, *args, **kwargs) (checked against its signature in
    the launching process: a misspelt keyword gets "did you mean nprocs?").
    These errors show the caller's frames, and a rank's traceback the
    program's, without pybsp's own (BSP_DEBUG=1 shows them).  Under MPI an
    error before the run starts ends the job's other ranks too, when rank 0
    ends.

    For type checkers, bsp.run returns list[R] for a program returning R,
    and checks the arguments against the program's parameters (see the
    overloads above).
    """
    return run_with_timeout(program, args, kwargs, nprocs=nprocs, backend=backend, sync_timeout=sync_timeout,
                            profile=profile, trace=trace, checkpoint=checkpoint, record=record, resume=resume)


@user_facing
def run_with_timeout(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], *,
                     nprocs: int | None = None, backend: str | None = None,
                     timeout: float | None = None, sync_timeout: float | None = None,
                     profile: Any = None, trace: Any = None, checkpoint: Any = None,
                     record: Any = None, resume: Any = None) -> list[Any]:
    """`run`, ended with RunTimeoutError after `timeout` seconds (fork only:
    an MPI run is bounded by its sync timeout alone)."""
    global runs_started
    if _turned_off is not None:
        raise RunTurnedOff(f"bsp.run starts nothing here: {_turned_off}")
    if running_a_rank():
        raise BSPError(_busy())
    runs_started += 1
    backend = choose_backend(backend)
    launcher = backend_launcher(backend, timeout)
    if not launcher.is_root():
        launcher.serve()            # never returns: rank 0 drives every run
    # Meet the serving ranks before anything here can raise: then, when an
    # error stops rank 0 (a misspelt keyword, a checkpoint in use), its exit
    # lets them go with its status rather than leave them waiting for it.
    launcher.join()
    check_callable(program, "the program")
    check_program_call(program, args, kwargs, _own_keywords())
    nprocs = choose_nprocs(nprocs, backend)
    sync_timeout = choose_sync_timeout(sync_timeout)
    profiling = profile_request(profile, trace, program)
    record_file = record_path(record, checkpoint)
    with checkpointing(program, checkpoint, resume) as launched, \
            recording(record_file, launched, args, kwargs, nprocs, backend) as recorder:
        outcomes = launcher.launch(recorder.wrap(launched), args, kwargs, nprocs, sync_timeout,
                                   profiling is not None)
        recorder.ended(outcomes)
        results = resolve(outcomes)
    if profiling is not None:
        profiling.finish(outcomes, program, backend, run)
    return results


def _busy() -> str:
    """Why bsp.run cannot start while this process runs a rank."""
    engine = current_engine()
    try:
        if engine is not None:
            engine.check_caller()
    except BSPError:        # another thread runs the rank: an MPI rank 0 in the middle of a run
        return ONE_RUN_AT_A_TIME
    return "bsp.run was called inside a BSP program; runs cannot be nested"


def choose_sync_timeout(seconds: float | None) -> float | None:
    """The sync timeout in seconds, None when turned off."""
    source = "sync_timeout"
    if seconds is None:
        text = os.environ.get("BSP_SYNC_TIMEOUT", "")
        if not text:
            return DEFAULT_SYNC_TIMEOUT
        source = "BSP_SYNC_TIMEOUT"
        try:
            seconds = float(text)
        except ValueError:
            raise ValueError(f"BSP_SYNC_TIMEOUT must be a number of seconds (0: no timeout), not {text!r}") from None
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise TypeError(f"{source} must be a number of seconds, not {type(seconds).__name__!r}")
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"{source} must be 0 (no timeout) or a positive number of seconds, not {seconds}")
    return float(seconds) or None


def max_nprocs(backend: str | None = None) -> int | None:
    """The most ranks a run can have on `backend` (None: no limit)."""
    return backend_launcher(choose_backend(backend)).world_size()


def _own_keywords() -> list[str]:
    """bsp.run's keywords (which never reach the program)."""
    return [name for name, parameter in inspect.signature(run).parameters.items()
            if parameter.kind is inspect.Parameter.KEYWORD_ONLY]


def available_processors() -> int:
    """The ranks a `bsp.run` may use here: under an MPI launcher (or with
    BSP_BACKEND=mpi), the size of the MPI job, read from the launcher's
    environment (a process that no launcher started is a job of one); else
    the cores this process may run on, which is fork's default nprocs.
    (Fork runs may have more ranks than that; they then share the cores.)"""
    if choose_backend(None) != "mpi":
        return usable_cores()
    size = job_size()
    if size is not None:
        return size
    if launched_by_mpi():       # a launcher that does not tell the size: ask MPI
        return _mpi_world_size()
    return 1


def choose_backend(backend: str | None) -> str:
    source = "backend"
    if backend is None and os.environ.get("BSP_BACKEND"):
        backend, source = os.environ["BSP_BACKEND"], "BSP_BACKEND"
    if backend is None:
        return "mpi" if launched_by_mpi() else "fork"
    if backend not in BACKENDS:
        raise ValueError(f"{source} must be one of {', '.join(map(repr, BACKENDS))}, not {backend!r}")
    return backend


def choose_nprocs(nprocs: int | None, backend: str = "fork") -> int:
    if nprocs is not None:
        return check_nprocs(nprocs)
    text = os.environ.get("BSP_NPROCS")
    if text:
        try:
            value = int(text)
        except ValueError:
            raise ValueError(f"BSP_NPROCS must be a positive integer, not {text!r}") from None
        return check_nprocs(value, "BSP_NPROCS")
    if backend == "mpi":
        return _mpi_world_size()
    return usable_cores()


def _mpi_world_size() -> int:
    size = backend_launcher("mpi").world_size()
    assert size is not None         # an MPI job has a size
    return size

