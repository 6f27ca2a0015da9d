"""The superstep profile: what each rank did in each superstep, and the BSP
cost model's prediction next to what was measured.

On every rank a `Recorder` (an observer of `bsp.engine.ObservedEngine`)
notes, per superstep: the kind of call that ended it and the user's call
site, when the rank entered and left the sync, the payload bytes and
messages it sent and received, and the transport exchanges the sync took.
Each rank's record travels back to the launching process in its Outcome, on
either backend, and becomes a `Profile` there.

From the records of all ranks, per superstep:

- w: a rank's compute time, from leaving the previous sync (or starting the
  program) to entering this one; w_max the largest over ranks;
- h: the larger of the bytes a rank sent and received; h_max over ranks;
- sync: from the moment the last rank entered the sync to the moment the
  last rank left it (the part of the superstep that g*h + l models);
- measured: from the end of the previous superstep (the moment its last rank
  left) to the end of this one;
- predicted: w_max + g*h_max + l*x, x the transport exchanges of the sync
  (1, or 2 when a rank got data with a get, which costs a second barrier).

Moments of different ranks are compared on one clock: each rank's
`time.perf_counter`, shifted by that rank's offset to the wall clock.  On one
machine (the fork backend, an MPI job on one node) that is exact to the
microsecond; across the nodes of a cluster it is as good as their clocks'
agreement (NTP: typically well under a millisecond).  w and h are each one
rank's own measurements and do not depend on it.

`bsp.run(..., profile=...)` chooses what happens with the profile at the end
of a run (see `request`): a table on stderr, or a call of a function with
the `Profile`.  The table's g and l come from a file written by
`bsp bench --out`, or are measured on the spot.
"""

from __future__ import annotations

import contextlib
import inspect
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Callable, Iterator, Union, cast

import numpy as np

from .record import SyncRecord

if TYPE_CHECKING:
    from .engine import ObservedEngine
    from .machine import MachineParameters
    from .outcome import Outcome

# The columns of a rank's record, one row per superstep.
COLUMNS = ("kind", "arg", "site", "entered", "left", "bytes_sent", "bytes_received",
           "messages_sent", "messages_received", "exchanges", "bytes_written")
(KIND, ARG, SITE, ENTERED, LEFT, BYTES_SENT, BYTES_RECEIVED, MESSAGES_SENT, MESSAGES_RECEIVED, EXCHANGES,
 BYTES_WRITTEN) = range(len(COLUMNS))

# A table with more supersteps than this shows one row per call site.
MOST_ROWS_BY_SUPERSTEP = 24
# Fewer repetitions than `bsp bench`: enough for g and l to a few percent.
SPOT_REPETITIONS = 50

PathLike = Union[str, "os.PathLike[str]"]


# -- on every rank ------------------------------------------------------------

class Recorder:
    """Notes each superstep of one rank.  Cost per superstep: a walk up the
    stack to the user's call site (a dictionary lookup per frame; the site
    is keyed by code and instruction, its line worked out once) and one
    row of eleven numbers, kept as 88 bytes of an array (rows are gathered in
    a list and packed into an array every CHUNK_ROWS supersteps)."""

    CHUNK_ROWS = 4096

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._pending: list[tuple[Any, ...]] = []
        self._chunks: list[np.ndarray] = []
        self._sites: dict[Any, int] = {}        # (id of code, instruction) or a site given as text -> index
        self._site_names: list[str] = []        # 'file:line in function' of each
        self._codes: list[CodeType] = []        # the code objects whose ids are in keys
        self.start = clock()
        self.clock_offset = time.time() - clock()

    def superstep(self, engine: "ObservedEngine", kind: int, arg: int, site: str | None,
                  entered: float, left: float) -> None:
        if site is None:
            frame = user_frame(3)      # from the caller of ObservedEngine.exchange, which calls this
            key: Any = (id(frame.f_code), frame.f_lasti)      # (hashing a code object costs microseconds)
        else:
            key = site
        index = self._sites.get(key)
        if index is None:
            index = self._sites[key] = len(self._sites)
            self._site_names.append(site if site is not None else self._name(frame))
        pending = self._pending
        pending.append((kind, arg, index, entered, left, engine.bytes_sent, engine.bytes_received,
                        engine.messages_sent, engine.messages_received, engine.superstep_exchanges,
                        engine.bytes_written))
        if len(pending) == self.CHUNK_ROWS:
            self._pack()

    def _name(self, frame: FrameType) -> str:
        """'file:line in function' of `frame`, whose code is kept from now on,
        so that its id, part of the site's key, stays its own."""
        code = frame.f_code
        self._codes.append(code)
        return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"

    def _pack(self) -> None:
        self._chunks.append(np.array(self._pending, np.float64).reshape(-1, len(COLUMNS)))
        self._pending = []

    def close(self) -> None:
        pass

    def result(self, pid: int) -> "RankProfile":
        """What this rank recorded, ready to travel in its Outcome."""
        self._pack()
        return RankProfile(pid, self.start, self.clock_offset, np.concatenate(self._chunks), self._site_names)


PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__)) + os.sep      # the bsp package, as bsp.callsite sees it
_inside_bsp: dict[str, bool] = {}       # co_filename -> whether it is a module of the bsp package


def user_frame(depth: int = 1) -> FrameType:
    """The innermost frame outside the bsp package (where the user called
    into it), starting from the frame `depth` calls up: what
    `bsp.callsite.user_call_site` describes, found with one dictionary
    lookup per frame rather than a path normalization."""
    frame = sys._getframe(depth)
    while frame.f_back is not None:
        filename = frame.f_code.co_filename
        inside = _inside_bsp.get(filename)
        if inside is None:
            inside = _inside_bsp[filename] = os.path.abspath(filename).startswith(PACKAGE_DIR)
        if not inside:
            break
        frame = frame.f_back
    return frame


@dataclass
class RankProfile:
    """One rank's record: a row per superstep (see COLUMNS; times on the
    rank's own clock, `clock_offset` seconds behind the wall clock), and
    the call sites that the rows' site column indexes."""

    pid: int
    start: float
    clock_offset: float
    rows: np.ndarray
    sites: list[str]


# -- in the launching process -------------------------------------------------

class Profile:
    """The records of every rank of one run, aligned on one clock.

    Arrays indexed [rank, superstep] (times in seconds since the first rank
    started): `entered`, `left`, `compute` (w), `sync` (time in the sync,
    waiting for the others included), `waiting` (of that, the wait for the
    last rank to arrive), `bytes_sent`, `bytes_received`, `messages_sent`,
    `messages_received`, `exchanges`, `bytes_written` (to checkpoint files); `sites[rank][superstep]` the call
    sites.  Per superstep: `w_max`, `h_max`, `sync_time`, `measured`, and
    `predicted(machine)`.  Building it costs O(ranks * supersteps)."""

    def __init__(self, ranks: list[RankProfile], program: str = "", backend: str = ""):
        if not ranks:
            raise ValueError("a profile needs the record of at least one rank")
        self.program = program
        self.backend = backend
        self.nprocs = len(ranks)
        self.supersteps = count = min(len(rank.rows) for rank in ranks)
        self.origin = min(rank.start + rank.clock_offset for rank in ranks)     # wall clock
        shifts = [rank.start + rank.clock_offset - self.origin for rank in ranks]
        self.start = np.array(shifts)

        def column(index: int) -> np.ndarray:
            return np.array([rank.rows[:count, index] for rank in ranks]).reshape(self.nprocs, count)

        def aligned(index: int) -> np.ndarray:
            return np.array([rank.rows[:count, index] - rank.start + shift
                             for rank, shift in zip(ranks, shifts)]).reshape(self.nprocs, count)

        self.entered, self.left = aligned(ENTERED), aligned(LEFT)
        self.bytes_sent = column(BYTES_SENT).astype(np.int64)
        self.bytes_received = column(BYTES_RECEIVED).astype(np.int64)
        self.messages_sent = column(MESSAGES_SENT).astype(np.int64)
        self.messages_received = column(MESSAGES_RECEIVED).astype(np.int64)
        self.exchanges = column(EXCHANGES).astype(np.int64)
        self.bytes_written = column(BYTES_WRITTEN).astype(np.int64)
        self.kinds = column(KIND)[0].astype(int)
        self.args = column(ARG)[0].astype(int)
        self.sites = [[rank.sites[int(i)] for i in rank.rows[:count, SITE]] for rank in ranks]

    # -- per rank and superstep --

    @property
    def compute(self) -> np.ndarray:
        """w: from leaving the previous sync (or starting) to entering this one."""
        before = np.concatenate([self.start[:, None], self.left[:, :-1]], axis=1)
        return np.asarray(self.entered - before)

    @property
    def sync(self) -> np.ndarray:
        """Time in the sync, from entering to leaving it."""
        return np.asarray(self.left - self.entered)

    @property
    def waiting(self) -> np.ndarray:
        """Of the time in the sync, the wait for the last rank to arrive."""
        return np.asarray(np.clip(self.entered.max(axis=0) - self.entered, 0.0, self.sync))

    @property
    def h(self) -> np.ndarray:
        """The larger of the bytes sent and received."""
        return np.maximum(self.bytes_sent, self.bytes_received)

    # -- per superstep --

    @property
    def w_max(self) -> np.ndarray:
        return np.asarray(self.compute.max(axis=0))

    @property
    def h_max(self) -> np.ndarray:
        return np.asarray(self.h.max(axis=0))

    @property
    def sync_time(self) -> np.ndarray:
        """From the last rank's arrival at the sync to the last departure."""
        return np.asarray(np.clip(self.left.max(axis=0) - self.entered.max(axis=0), 0.0, None))

    @property
    def measured(self) -> np.ndarray:
        """From the end of the previous superstep (the first: the moment the
        first rank started) to the end of this one."""
        return np.diff(self.left.max(axis=0), prepend=self.start.min())

    def predicted(self, machine: "MachineParameters") -> np.ndarray:
        """w_max + g*h_max + l*(transport exchanges of the sync)."""
        return np.asarray(self.w_max + machine.g * self.h_max + machine.l * self.exchanges.max(axis=0))

    def label(self, superstep: int) -> str:
        """What ended the superstep, and where (rank 0's call site; for the
        program's end, 'exit at' its definition)."""
        record = SyncRecord(superstep, int(self.kinds[superstep]), int(self.args[superstep]), 0, 0, 0, 0)
        return f"{record.describe()} at {short_site(self.sites[0][superstep])}"

    # -- the report --

    def report(self, machine: "MachineParameters", by: str = "auto") -> str:
        """The table of supersteps (`by="superstep"`) or of call sites,
        aggregated (`by="site"`; "auto": by superstep up to
        MOST_ROWS_BY_SUPERSTEP supersteps), with the BSP prediction against
        the measured total.  Raises ValueError for another `by`."""
        if by not in ("auto", "superstep", "site"):
            raise ValueError(f"by must be 'auto', 'superstep' or 'site', not {by!r}")
        if by == "auto":
            by = "superstep" if self.supersteps <= MOST_ROWS_BY_SUPERSTEP else "site"
        predicted = self.predicted(machine)
        columns = [self.w_max, self.h_max, self.sync_time, self.measured, predicted]
        groups = self._groups(by)
        rows = [(label, len(steps), [column[steps].sum() for column in columns]) for label, steps in groups]
        measured, total = float(self.measured.sum()), float(predicted.sum())
        lines = [f"pybsp profile of {self.program or 'the program'}: {self.nprocs} ranks, "
                 f"{self.backend or 'unknown'} backend, {self.supersteps} supersteps"]
        lines += _table(by, rows, [sum(row[2][i] for row in rows) for i in range(len(columns))])
        lines.append(f"BSP prediction T = sum(w_max + g*h_max + l) = {seconds(total)}, measured {seconds(measured)}: "
                     f"error {percent(total, measured)}")
        lines += self._writes()
        spread = float(self.start.max() - self.start.min())
        if self.nprocs > 1:
            lines.append(f"the ranks started within {seconds(spread)} of each other: "
                         f"superstep 0's measured time includes that")
        lines.append(f"g = {machine.g * 1e9:.3g} ns/byte, l = {seconds(machine.l)} "
                     f"({describe_machine(machine, self.nprocs, self.backend)})")
        return "\n".join(lines)

    def _writes(self) -> list[str]:
        """A line on the supersteps that wrote checkpoint files, if any."""
        steps = np.flatnonzero(self.bytes_written.sum(axis=0))
        if not len(steps):
            return []
        written = self.bytes_written[:, steps]
        return [f"checkpoints: {len(steps)} supersteps wrote {nbytes(written.sum())} to files "
                f"(at most {nbytes(written.sum(axis=1).max())} by one rank) in "
                f"{seconds(float(self.measured[steps].sum()))} (in their w: ranks write before the sync)"]

    def _groups(self, by: str) -> list[tuple[str, np.ndarray]]:
        """(label, superstep indices) per row of the table."""
        labels = [self.label(step) for step in range(self.supersteps)]
        if by == "superstep":
            return [(f"{step:>5}  {label}", np.array([step])) for step, label in enumerate(labels)]
        order: dict[str, list[int]] = {}
        for step, label in enumerate(labels):
            order.setdefault(label, []).append(step)
        return [(label, np.array(steps)) for label, steps in order.items()]


def _table(by: str, rows: list[tuple[str, int, list[float]]], totals: list[float]) -> list[str]:
    first = "step   call" if by == "superstep" else "call site"
    width = max([len(first), len("total")] + [len(label) for label, _, _ in rows])
    count = "" if by == "superstep" else f"{'count':>7}"
    header = f"{first:<{width}}{count}{'w_max':>11}{'h_max':>12}{'sync':>11}{'measured':>11}{'predicted':>11}"
    lines = [header]
    for label, n, (w, h, sync, measured, predicted) in rows:
        number = "" if by == "superstep" else f"{n:>7}"
        lines.append(f"{label:<{width}}{number}{seconds(w):>11}{nbytes(h):>12}{seconds(sync):>11}"
                     f"{seconds(measured):>11}{seconds(predicted):>11}")
    w, h, sync, measured, predicted = totals
    blank = "" if by == "superstep" else f"{sum(n for _, n, _ in rows):>7}"
    lines.append(f"{'total':<{width}}{blank}{seconds(w):>11}{nbytes(h):>12}{seconds(sync):>11}"
                 f"{seconds(measured):>11}{seconds(predicted):>11}")
    return lines


def short_site(site: str) -> str:
    """'file.py:12 in f' for a site 'some/dir/file.py:12 in f'."""
    path, _, rest = site.partition(":")
    return f"{os.path.basename(path)}:{rest}" if rest else site


def seconds(value: float) -> str:
    """A duration for people: '12.3 ms', '45.6 us', '1.23 s'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns" if value else "0 s"


def nbytes(value: float) -> str:
    """A size for people: '512 B', '16 KiB', '4.2 MiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{int(value)} B"


def percent(predicted: float, measured: float) -> str:
    return f"{100 * (predicted - measured) / measured:+.1f}%" if measured > 0 else "n/a"


def describe_machine(machine: "MachineParameters", nprocs: int, backend: str) -> str:
    """Where g and l come from, with a warning when they were measured for
    another number of ranks or backend than the run's."""
    origin = f"measured {machine.measured}" if machine.measured else "measured"
    where = f"{machine.backend} backend, nprocs = {machine.nprocs}, {origin}"
    if machine.nprocs != nprocs or (backend and machine.backend != backend):
        where += f"; NOTE: this run used nprocs = {nprocs} on the {backend} backend"
    return where


# -- what bsp.run does with a profile -----------------------------------------

@dataclass(frozen=True)
class Request:
    """What a run does with its profile: write a trace (`trace`), and call
    `deliver` with the Profile (a table on stderr, or the user's function)."""

    deliver: Callable[[Profile], Any] | None
    trace: Path | None

    def finish(self, outcomes: list["Outcome"], program: Callable[..., Any], backend: str) -> Profile:
        """Build the Profile from the ranks' outcomes, write the trace, and
        deliver it.  Costs O(ranks * supersteps), plus a measurement of g
        and l when a table needs them and none were given."""
        profile = Profile([outcome.profile for outcome in outcomes if outcome.profile is not None],
                          _name(program), backend)
        if self.trace is not None:
            from . import trace
            trace.write(profile, self.trace)
        if self.deliver is not None:
            self.deliver(profile)
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
    trace file to write (see bsp.trace); a trace alone profiles the run
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
    deliver = _deliverer(profile)
    trace_path = None
    if trace is not None:
        from .trace import check_path
        trace_path = check_path(trace)
    if deliver is None and trace_path is None:
        return None
    return Request(deliver, trace_path)


def _deliverer(profile: Any) -> Callable[[Profile], Any] | None:
    if profile is False:
        return None
    if profile is True:
        machine_path = os.environ.get("BSP_MACHINE") or None
        if machine_path is not None:
            load_machine(machine_path, "BSP_MACHINE")
        return lambda result: print_report(result, machine_path)
    if isinstance(profile, (str, os.PathLike)):
        load_machine(profile, "profile")
        return lambda result: print_report(result, profile)
    if callable(profile):
        return cast("Callable[[Profile], Any]", profile)
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


def load_machine(path: PathLike, source: str) -> "MachineParameters":
    """The machine parameters saved in `path`; ValueError naming `source`
    when the file is missing or holds none."""
    from .machine import MachineParameters
    try:
        return MachineParameters.load(os.fspath(path))
    except FileNotFoundError:
        raise ValueError(f"{source}: no such machine file {os.fspath(path)!r} (write one with "
                         f"`bsp bench --out FILE.json`)") from None
    except (OSError, ValueError, TypeError) as error:
        raise ValueError(f"{source}: {os.fspath(path)!r} is not a machine file written by `bsp bench --out` "
                         f"({error})") from None


def print_report(profile: Profile, machine_path: PathLike | None = None) -> None:
    """Print the profile's table to stderr, with g and l from `machine_path`,
    else measured on the spot for the run's nprocs and backend."""
    if machine_path is not None:
        machine = load_machine(machine_path, "profile")
    else:
        machine = machine_on_the_spot(profile.nprocs, profile.backend)
    print(profile.report(machine), file=sys.stderr, flush=True)


_spot: dict[tuple[int, str], "MachineParameters"] = {}
_quiet = False      # True while g and l are measured: those runs are not profiled


def machine_on_the_spot(nprocs: int, backend: str) -> "MachineParameters":
    """g and l measured now, with `nprocs` ranks on `backend` (about a
    second; the result is kept for later runs of this process)."""
    key = (nprocs, backend)
    if key not in _spot:
        from .machine import measure
        print(f"pybsp: measuring g and l for the profile ({nprocs} ranks, {backend}); to skip this, save them "
              f"once with `bsp bench -n {nprocs} --out FILE.json` and set BSP_MACHINE=FILE.json",
              file=sys.stderr, flush=True)
        with _unprofiled():
            _spot[key] = measure(nprocs, backend, repetitions=SPOT_REPETITIONS)
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
