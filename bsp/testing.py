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
timeout: a body whose ranks wait that long at a sync for a rank that does not
come ends the job (a hung MPI rank cannot be stopped any other way).
"""

from __future__ import annotations

import functools
import inspect
from typing import TYPE_CHECKING, Any, Callable, Iterable, TypeVar

from .checks import check_nprocs
from .errors import BSPError, RemoteError
from .launch import launched_by_mpi, max_nprocs, run_with_timeout

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
        return run_with_timeout(body, (), kwargs or {}, nprocs=nprocs, timeout=timeout,
                                sync_timeout=timeout or 0)
    except BSPError as error:
        raise SPMDTestFailure(f"with nprocs={nprocs}: {_report(error)}", error) from None


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
    from mpi_backend import launcher
    return not launcher.is_root()


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
    """Ranks other than 0 serve rank 0's runs instead of running tests."""
    if _mpi_rank_is_server():
        from mpi_backend import launcher
        launcher.serve()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Rank 0, done: the servers exit with its status."""
    if launched_by_mpi():
        from mpi_backend import launcher
        launcher.shutdown(int(exitstatus))
