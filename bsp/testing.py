"""Testing BSP programs with pytest (or any test runner).

    from bsp.testing import spmd

    @spmd(nprocs=[1, 2, 4], timeout=30)
    def test_ring(world):
        world.send(world.pid, (world.pid + 1) % world.nprocs)
        world.sync()
        assert world.messages() == [((world.pid - 1) % world.nprocs, (world.pid - 1) % world.nprocs)]

The decorated body runs as a BSP program, its first parameter the World;
other parameters are pytest fixtures, passed to every rank.  Under pytest the
test is parametrized over `nprocs` (ids `nprocs=1`, ...); without pytest,
calling it runs every `nprocs` in turn.  A failing rank fails the test with
the traceback of every rank that failed, and a run that outlives `timeout`
seconds fails with the ranks that were still computing and those waiting at a
sync: a parallel bug never hangs a test suite.

The same tests run on the MPI backend when pytest itself runs under an MPI
launcher.  Add `pytest_plugins = ["bsp.testing"]` to the suite's conftest.py
and run, for example, `mpiexec -n 4 python -m pytest --with-mpi`: every rank
starts pytest, but only rank 0 runs the tests and prints the report; the other
ranks collect the same tests (so that test modules import the same way on
every rank), then serve rank 0's runs until it finishes, and exit with its
status.  Each `spmd` run then uses MPI, on the first nprocs ranks of the job;
an nprocs larger than the job is skipped.  Under MPI, `timeout` is the sync
timeout, and rank 0's time limit: a body still computing on rank 0 after it
raises TimeoutError there (the test fails with rank 0's traceback); a body
whose ranks wait that long at a sync for another rank fails the test with
SyncTimeoutError, which pytest reports, and the job, having lost that rank,
fails every later run and ends after pytest's report (a hung MPI rank cannot
be stopped any other way).

`assert_ranks_raise(program, ..., nprocs=4, ranks=[2], exception=IndexError)`
asserts that a program fails on exactly those ranks, with that exception.
"""

from __future__ import annotations

import contextlib
import functools
import inspect
import os
import re
import signal
import threading
from typing import TYPE_CHECKING, Any, Callable, Iterable, Iterator, TypeVar

from bsp.launch.backends import launcher as backend_launcher
from bsp.base.argument_checks import check_nprocs
from bsp.errors import BSPError, RemoteError
from bsp.launch.bsp_run import max_nprocs, run_with_timeout
from bsp.launch.mpi_environment import launched_by_mpi

if TYPE_CHECKING:
    import pytest

Hook = TypeVar("Hook", bound=Callable[..., Any])

DEFAULT_NPROCS = (1, 2, 4)
DEFAULT_TIMEOUT = 60.0


class SPMDTestFailure(AssertionError):
    """A test body failed on some rank(s); `error` is the BSPError of the run."""

    def __init__(self, message: str, error: BSPError):
        super().__init__(message)
        self.error = error


def spmd(nprocs: Iterable[int] = DEFAULT_NPROCS, *, timeout: float | None = DEFAULT_TIMEOUT
         ) -> Callable[[Callable[..., Any]], Callable[..., None]]:
    """Decorator: run the test body as a BSP program on each of `nprocs`
    ranks, on the fork backend, within `timeout` seconds (None: no limit)."""
    counts = tuple(check_nprocs(n) for n in nprocs)
    if not counts:
        raise ValueError("spmd needs at least one nprocs")

    def decorate(body: Callable[..., Any]) -> Callable[..., None]:
        parameters = list(inspect.signature(body).parameters.values())
        if not parameters:
            raise TypeError(f"{body.__name__} must take the World as its first parameter")
        fixtures = parameters[1:]

        @functools.wraps(body)
        def test(nprocs: int | None = None, **fixture_values: Any) -> None:
            __tracebackhide__ = True
            for count in counts if nprocs is None else (nprocs,):
                require_nprocs(count)
                run_spmd(body, count, fixture_values, timeout)

        nprocs_parameter = inspect.Parameter("nprocs", inspect.Parameter.POSITIONAL_OR_KEYWORD)
        test.__signature__ = inspect.Signature([nprocs_parameter, *fixtures])  # type: ignore[attr-defined]
        try:
            import pytest
        except ImportError:
            return test
        marked: Callable[..., None] = pytest.mark.parametrize("nprocs", counts, ids=lambda n: f"nprocs={n}")(test)
        return marked

    return decorate


def run_spmd(body: Callable[..., Any], nprocs: int, kwargs: dict[str, Any] | None = None,
             timeout: float | None = DEFAULT_TIMEOUT) -> list[Any]:
    """Run `body(world, **kwargs)` on `nprocs` ranks and return the results;
    raise SPMDTestFailure, with every failing rank's traceback, if the run
    fails or outlives `timeout` seconds."""
    __tracebackhide__ = True
    try:
        with _rank_zero_deadline(timeout):
            return run_with_timeout(body, (), kwargs or {}, nprocs=nprocs, timeout=timeout,
                                    sync_timeout=timeout or 0)
    except BSPError as error:
        raise SPMDTestFailure(f"with nprocs={nprocs}: {_report(error)}", error) from None


@contextlib.contextmanager
def _rank_zero_deadline(seconds: float | None) -> Iterator[None]:
    """Under MPI, where rank 0 is pytest's own process: if the body still
    computes on rank 0 after `seconds`, raise TimeoutError in it there.  The
    run then fails as for any exception, with rank 0's traceback showing
    where it was, and the job goes on to the next test.  (Rank 0 waiting at
    a sync is left to the sync timeout, which names the late ranks; and a
    late rank 0 found by another rank could only be stopped by ending the
    job, before pytest reports anything.)"""
    if not seconds or not launched_by_mpi() or threading.current_thread() is not threading.main_thread():
        yield
        return

    def alarm(signum: int, frame: Any) -> None:
        if frame is not None and frame.f_code.co_filename.startswith(_PYBSP_DIRS):
            signal.setitimer(signal.ITIMER_REAL, _LOOK_AGAIN_SECONDS)
            return
        raise TimeoutError(f"the test body was still computing on rank 0 after the spmd timeout of {seconds:g} s")

    previous = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


_PYBSP_DIRS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), name) + os.sep
                    for name in ("bsp", "mpi_backend"))
_LOOK_AGAIN_SECONDS = 0.5


def assert_ranks_raise(program: Callable[..., Any], *args: Any, nprocs: int, ranks: Iterable[int],
                       exception: type[BaseException] = Exception, match: str | None = None,
                       timeout: float | None = DEFAULT_TIMEOUT, **kwargs: Any) -> RemoteError:
    """Run `program(world, *args, **kwargs)` on `nprocs` ranks and assert
    that it fails on exactly `ranks` (in the same superstep), each raising
    `exception` (the type named in its traceback: that type exactly, as the
    remote exception arrives as text), with a message in which the regular
    expression `match` is found, if given.  Returns the RemoteError.  The
    collective counterpart of pytest.raises, as mpi-pytest's parallel_assert
    is of assert: it judges every rank at once, and a rank that hangs fails
    it at the timeout rather than hanging the test.  Raises AssertionError
    naming, per rank, what happened instead."""
    __tracebackhide__ = True
    expected = sorted(set(ranks))
    try:
        results = run_with_timeout(program, args, kwargs, nprocs=nprocs, timeout=timeout, sync_timeout=timeout or 0)
    except RemoteError as error:
        _check_failures(error, expected, exception, match)
        return error
    except BSPError as error:
        raise AssertionError(f"expected ranks {expected} to raise {exception.__name__}; the run ended in "
                             f"{type(error).__name__}: {error}") from None
    raise AssertionError(f"expected ranks {expected} to raise {exception.__name__}; every rank returned: {results!r}")


def _check_failures(error: RemoteError, expected: list[int], exception: type[BaseException],
                    match: str | None) -> None:
    __tracebackhide__ = True
    names = {exception.__qualname__, f"{exception.__module__}.{exception.__qualname__}"}
    wrong = []
    for rank, text in sorted(error.failures.items()):
        last = text.rstrip().splitlines()[-1] if text.strip() else ""
        name, _, message = last.partition(":")
        if name not in names or (match is not None and not re.search(match, message.strip())):
            wrong.append(f"rank {rank} raised {last}")
    if sorted(error.failures) != expected or wrong:
        happened = "; ".join(f"rank {rank} raised {text.rstrip().splitlines()[-1]}"
                             for rank, text in sorted(error.failures.items()))
        wanted = f"{exception.__name__}" + (f" matching {match!r}" if match else "")
        raise AssertionError(f"expected ranks {expected} (and no other) to raise {wanted}; {happened}\n"
                             f"{_report(error)}")


def require_nprocs(nprocs: int) -> None:
    """Skip the calling pytest test if the backend in use cannot run
    `nprocs` ranks (under MPI: more ranks than the job has)."""
    most = max_nprocs()
    if most is not None and nprocs > most:
        import pytest
        pytest.skip(f"needs {nprocs} ranks; this MPI job has {most}")


def _report(error: BSPError) -> str:
    if not isinstance(error, RemoteError):
        return f"{type(error).__name__}: {error}"
    parts = [f"{len(error.failures)} rank(s) failed"]
    for rank, text in sorted(error.failures.items()):
        parts.append(f"--- rank {rank} ---\n{text.rstrip()}")
    return "\n".join(parts)


# -- pytest under an MPI launcher (enable with pytest_plugins = ["bsp.testing"]) --

def _mpi_rank_is_server() -> bool:
    if not launched_by_mpi():
        return False
    return not backend_launcher("mpi").is_root()


def pytest_configure(config: pytest.Config) -> None:
    """Ranks other than 0 print nothing of pytest's: the report is rank 0's."""
    if _mpi_rank_is_server():
        reporter = config.pluginmanager.get_plugin("terminalreporter")
        if reporter is not None:
            config.pluginmanager.unregister(reporter)


def _first(hook: Hook) -> Hook:
    """Mark a pytest hook to run before the others, when pytest is there."""
    try:
        import pytest
    except ImportError:
        return hook
    marked: Hook = pytest.hookimpl(tryfirst=True)(hook)
    return marked


@_first
def pytest_runtestloop(session: pytest.Session) -> None:
    """Ranks other than 0 serve rank 0's runs instead of running tests;
    rank 0 meets them first, so that a session that makes no run (every
    test skipped under MPI) still lets them go at its end."""
    if _mpi_rank_is_server():
        backend_launcher("mpi").serve()
    elif launched_by_mpi():
        backend_launcher("mpi").join()


_session_status = 0


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Rank 0, done: note the status, for the servers to exit with."""
    global _session_status
    _session_status = int(exitstatus)


def pytest_unconfigure(config: pytest.Config) -> None:
    """Rank 0, once pytest has printed its report: the servers exit with its
    status.  (When a run lost ranks to a sync timeout, this ends the job
    with MPI_Abort: only then, so that the report, with the
    SyncTimeoutError, is out first.)"""
    if launched_by_mpi():
        backend_launcher("mpi").close(_session_status)
