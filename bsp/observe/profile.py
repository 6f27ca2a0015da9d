"""The superstep profile: what each rank did in each superstep, and the BSP
cost model's prediction next to what was measured.

On every rank a `bsp.observe.profile_observer.Recorder` (an observer of
`bsp.core.observed_engine.ObservedEngine`) notes, per superstep: the kind of call that ended it and the user's call
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
of a run (see `bsp.launch.profile_request.request`): a table on stderr, or a call of a function with
the `Profile`.  The table's g and l come from a file written by
`bsp bench --out`, or are measured on the spot.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from bsp.core.sync_record import SyncRecord
from bsp.observe.profile_observer import ARG, BYTES_RECEIVED, BYTES_SENT, BYTES_WRITTEN, ENTERED, EXCHANGES, KIND, LEFT, MESSAGES_RECEIVED, MESSAGES_SENT, SITE, RankProfile
from bsp.observe.units import nbytes, percent, seconds, short_site

if TYPE_CHECKING:
    from bsp.observe.bspbench import MachineParameters

# A table with more supersteps than this shows one row per call site.
MOST_ROWS_BY_SUPERSTEP = 24


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


def describe_machine(machine: "MachineParameters", nprocs: int, backend: str) -> str:
    """Where g and l come from, with a warning when they were measured for
    another number of ranks or backend than the run's."""
    origin = f"measured {machine.measured}" if machine.measured else "measured"
    where = f"{machine.backend} backend, nprocs = {machine.nprocs}, {origin}"
    if machine.nprocs != nprocs or (backend and machine.backend != backend):
        where += f"; NOTE: this run used nprocs = {nprocs} on the {backend} backend"
    return where
