"""Rank-aware logging, and rank 0's progress line.

    import logging
    import bsp.observe.logs

    bsp.observe.logs.configure()            # once, at the top of the script
    log = logging.getLogger(__name__)

    def program(world):
        log.info("starting")        # printed once: INFO only from rank 0
        log.warning("odd")          # printed by every rank that logs it

Every record that passes a `RankFilter` carries `rank` (this process's rank
in the run, or, outside a run, 0 in the launching process and the MPI rank
in the others) and `superstep` (the supersteps completed so far; "-" outside
a run), for formats such as `%(rank)s`.  By default records of level INFO
and above pass on rank 0, WARNING and above on every other rank, so a
script logs the same under `python prog.py` and `mpiexec -n 64 python prog.py`.

The progress line: on a long run (over PROGRESS_DELAY seconds), rank 0
keeps a line on stderr up to date with the superstep, the time elapsed and
the bytes it exchanged, and erases it at the end.  Only when stderr is a
terminal; BSP_PROGRESS=0 (or `bsp run --no-progress`) turns it off.  It
costs rank 0 about a microsecond per superstep, so benchmarks run at a
terminal should turn it off; when stderr is not a terminal it costs nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import time
from typing import TYPE_CHECKING, Callable, TextIO

from bsp.launch.mpi_environment import job_rank, launched_by_mpi
from bsp.launch.rank_runner import current_engine
from bsp.observe.units import nbytes

if TYPE_CHECKING:
    from bsp.core.observed_engine import ObservedEngine

DEFAULT_FORMAT = "%(levelname)s rank %(rank)s superstep %(superstep)s %(name)s: %(message)s"
PROGRESS_DELAY = 2.0        # seconds a run lasts before it shows progress
PROGRESS_INTERVAL = 0.5     # seconds between updates


def where() -> tuple[int, int | None]:
    """(rank, superstep) of this process now: the rank of the run it
    runs, with the supersteps completed so far; outside a run, the MPI rank
    of this process (0 for one not started by an MPI launcher) and None."""
    engine = current_engine()
    if engine is not None:
        return engine.pid, engine.superstep
    return _process_rank(), None


def _process_rank() -> int:
    return (job_rank() or 0) if launched_by_mpi() else 0


class RankFilter(logging.Filter):
    """Adds `rank` and `superstep` to every record, and passes records of
    `level` and above on rank `root`, of `others` and above elsewhere.
    Cost per record: a few attribute lookups."""

    def __init__(self, level: int = logging.INFO, others: int = logging.WARNING, root: int = 0):
        super().__init__()
        self.level = level
        self.others = others
        self.root = root

    def filter(self, record: logging.LogRecord) -> bool:
        rank, superstep = where()
        record.rank = rank
        record.superstep = "-" if superstep is None else superstep
        return record.levelno >= (self.level if rank == self.root else self.others)


def configure(level: int = logging.INFO, others: int = logging.WARNING, *, root: int = 0,
              stream: TextIO | None = None, fmt: str = DEFAULT_FORMAT,
              logger: logging.Logger | None = None) -> logging.Handler:
    """Log to `stream` (default stderr) through a RankFilter(level, others,
    root), with rank and superstep in every line; lower the logger's level
    (default: the root logger's) to let those records through.  Call it
    once, before bsp.run (the ranks inherit it; under MPI every process runs
    the script's top).  Calling it again replaces the handler it added.
    Returns the handler.  Raises ValueError for a format string that
    logging.Formatter refuses."""
    target = logger if logger is not None else logging.getLogger()
    for handler in list(target.handlers):
        if getattr(handler, "_bsp_rank_handler", False):
            target.removeHandler(handler)
    handler = logging.StreamHandler(stream)
    handler.addFilter(RankFilter(level, others, root))
    handler.setFormatter(logging.Formatter(fmt))
    handler._bsp_rank_handler = True        # type: ignore[attr-defined]
    lowest = min(level, others)
    if target.level == logging.NOTSET or target.level > lowest:
        target.setLevel(lowest)
    target.addHandler(handler)
    return handler


# -- the progress line ----------------------------------------------------------

class ProgressLine:
    """Rank 0's progress line (an observer of `bsp.core.observed_engine.ObservedEngine`):
    shown once the run has lasted `delay` seconds, redrawn at most every
    `interval` seconds, erased when the program ends."""

    def __init__(self, stream: TextIO, clock: Callable[[], float] = time.perf_counter,
                 delay: float = PROGRESS_DELAY, interval: float = PROGRESS_INTERVAL):
        self._stream = stream
        self._start = clock()
        self._next = self._start + delay
        self._interval = interval
        self._bytes = 0
        self._shown = False

    def superstep(self, engine: "ObservedEngine", kind: int, arg: int, site: str | None,
                  entered: float, left: float) -> None:
        self._bytes += engine.bytes_sent + engine.bytes_received
        if left >= self._next:
            self._next = left + self._interval
            self._draw(f"[bsp] superstep {engine.superstep}, {left - self._start:.1f} s, "
                       f"rank 0 exchanged {nbytes(self._bytes)}")

    def close(self) -> None:
        if self._shown:
            self._draw("")

    def _draw(self, text: str) -> None:
        try:
            self._stream.write(f"\r{text}\x1b[K")
            self._stream.flush()
        except (OSError, ValueError):
            return
        self._shown = bool(text)


def progress_wanted() -> bool:
    """Whether rank 0 shows the progress line: stderr is a terminal and
    BSP_PROGRESS is not 0 (or no, off, false)."""
    if os.environ.get("BSP_PROGRESS", "").strip().lower() in ("0", "no", "off", "false"):
        return False
    try:
        return sys.stderr.isatty()
    except (AttributeError, ValueError):
        return False


def progress_line(pid: int) -> ProgressLine | None:
    """The progress line for rank `pid`, or None (ranks other than 0, or
    not wanted: see progress_wanted)."""
    return ProgressLine(sys.stderr) if pid == 0 and progress_wanted() else None
