"""What `bsp.run(..., profile=..., trace=...)` does with a run's profile:
check the options before the run (`request`), and at its end build the
`bsp.observe.profile.Profile` from the ranks' records, write the trace, and print
the table (g and l from a machine file, or measured on the spot) or hand
the Profile to the user's function."""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Iterator, cast

from bsp.observe.bspbench import MachineParameters, measure_with
from bsp.observe.output_paths import PathLike, check_path
from bsp.observe.profile import Profile
from bsp.observe.trace import write as write_trace

if TYPE_CHECKING:
    from bsp.launch.outcome import Outcome

# Fewer repetitions than `bsp bench`: enough for g and l to a few percent.
SPOT_REPETITIONS = 50

Runner = Callable[..., list[Any]]        # bsp.run


@dataclass(frozen=True)
class Request:
    """What a run does with its profile: write a trace (`trace`); print the
    table on stderr (`table`, with g and l from `machine_path`, else measured
    on the spot), or call the user's `callback` with the Profile."""

    table: bool
    machine_path: PathLike | None
    callback: Callable[[Profile], Any] | None
    trace: Path | None

    def finish(self, outcomes: list["Outcome"], program: Callable[..., Any], backend: str, run: Runner) -> Profile:
        """Build the Profile from the ranks' outcomes, write the trace, and
        deliver it.  Costs O(ranks * supersteps), plus a measurement of g
        and l with `run` (bsp.run) when a table needs them and none were given."""
        profile = Profile([outcome.profile for outcome in outcomes if outcome.profile is not None],
                          _name(program), backend)
        if self.trace is not None:
            write_trace(profile, self.trace)
        if self.table:
            print_report(profile, self.machine_path, run)
        elif self.callback is not None:
            self.callback(profile)
        return profile


def request(profile: Any, trace: Any, program: Callable[..., Any]) -> Request | None:
    """Check bsp.run's `profile` and `trace` options and return what to do,
    or None when the run is not profiled.

    `profile`: None (the BSP_PROFILE environment variable: 1 on, 0 or unset
    off), False, True (a table on stderr at the end of the run, with g and l
    from the file BSP_MACHINE names, else measured on the spot), the path of
    a file written by `bsp bench --out` (a table with its g and l), or a
    function, called in the launching process with the run's Profile (and no
    table printed).  `trace`: None (BSP_TRACE), or the path of a Chrome
    trace file to write (see bsp.observe.trace); a trace alone profiles the run
    without a table.

    Raises TypeError for an option of another type, or when the program
    itself takes a parameter of that name (it would never get it: bsp.run
    keeps the keyword); ValueError for a machine file that is missing or
    holds no machine parameters, a trace path in a missing directory, and a
    bad BSP_PROFILE.
    """
    _check_reserved(program, profile=profile, trace=trace)
    if profile is None:
        profile = _profile_from_environment()
    if trace is None and not _quiet:
        trace = os.environ.get("BSP_TRACE") or None
    table, machine_path, callback = _delivery(profile)
    trace_path = None if trace is None else check_path(trace)
    if not table and callback is None and trace_path is None:
        return None
    return Request(table, machine_path, callback, trace_path)


def _delivery(profile: Any) -> tuple[bool, PathLike | None, Callable[[Profile], Any] | None]:
    """(print the table, its machine file, the user's function) for bsp.run's `profile`."""
    if profile is False:
        return False, None, None
    if profile is True:
        machine_path = os.environ.get("BSP_MACHINE") or None
        if machine_path is not None:
            load_machine(machine_path, "BSP_MACHINE")
        return True, machine_path, None
    if isinstance(profile, (str, os.PathLike)):
        load_machine(profile, "profile")
        return True, profile, None
    if callable(profile):
        return False, None, cast("Callable[[Profile], Any]", profile)
    raise TypeError(f"profile must be True, False, the path of a machine file written by `bsp bench --out`, "
                    f"or a function to call with the Profile, not {type(profile).__name__!r}")


def _profile_from_environment() -> bool:
    text = "" if _quiet else os.environ.get("BSP_PROFILE", "")
    if text not in ("", "0", "1"):
        raise ValueError(f"BSP_PROFILE must be 1 (profile the runs) or 0, not {text!r}")
    return text == "1"


def _check_reserved(program: Callable[..., Any], **options: Any) -> None:
    """Refuse an option that the program also takes as a parameter of its
    own: bsp.run would keep it, and the program would never see it."""
    given = [name for name, value in options.items() if value is not None]
    if not given:
        return
    try:
        parameters = inspect.signature(program).parameters
    except (TypeError, ValueError):
        return
    for name in given:
        parameter = parameters.get(name)
        if parameter is not None and parameter.kind is not inspect.Parameter.VAR_KEYWORD:
            raise TypeError(f"bsp.run's {name}= option is bsp.run's own, but the program also takes a parameter "
                            f"named {name!r}: pass the program's {name} with functools.partial(program, "
                            f"{name}=...) or positionally")


def load_machine(path: PathLike, source: str) -> MachineParameters:
    """The machine parameters saved in `path`; ValueError naming `source`
    when the file is missing or holds none."""
    try:
        return MachineParameters.load(os.fspath(path))
    except FileNotFoundError:
        raise ValueError(f"{source}: no such machine file {os.fspath(path)!r} (write one with "
                         f"`bsp bench --out FILE.json`)") from None
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{source}: {os.fspath(path)!r} is not a machine file written by `bsp bench --out` "
                         f"({error})") from None


def print_report(profile: Profile, machine_path: PathLike | None, run: Runner) -> None:
    """Print the profile's table to stderr, with g and l from `machine_path`,
    else measured on the spot with `run` (bsp.run) for the run's nprocs and backend."""
    if machine_path is not None:
        machine = load_machine(machine_path, "profile")
    else:
        machine = machine_on_the_spot(profile.nprocs, profile.backend, run)
    print(profile.report(machine), file=sys.stderr, flush=True)


_spot: dict[tuple[int, str], MachineParameters] = {}
_quiet = False      # True while g and l are measured: those runs are not profiled


def machine_on_the_spot(nprocs: int, backend: str, run: Runner) -> MachineParameters:
    """g and l measured now with `run` (bsp.run), `nprocs` ranks on `backend`
    (about a second; the result is kept for later runs of this process)."""
    key = (nprocs, backend)
    if key not in _spot:
        print(f"pybsp: measuring g and l for the profile ({nprocs} ranks, {backend}); to skip this, save them "
              f"once with `bsp bench -n {nprocs} --out FILE.json` and set BSP_MACHINE=FILE.json",
              file=sys.stderr, flush=True)
        with _unprofiled():
            _spot[key] = measure_with(run, nprocs, backend, repetitions=SPOT_REPETITIONS)
    return _spot[key]


@contextlib.contextmanager
def _unprofiled() -> Iterator[None]:
    """Runs made meanwhile ignore BSP_PROFILE and BSP_TRACE."""
    global _quiet
    before, _quiet = _quiet, True
    try:
        yield
    finally:
        _quiet = before


def _name(program: Callable[..., Any]) -> str:
    return getattr(program, "__qualname__", None) or getattr(program, "__name__", None) or repr(program)
