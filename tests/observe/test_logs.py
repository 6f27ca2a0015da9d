"""Rank-aware logging and rank 0's progress line."""

import io
import logging

import pytest

import bsp
from bsp.observe import logs
from bsp.testing import require_nprocs


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.seen = []

    def emit(self, record):
        self.seen.append((record.rank, record.superstep, record.levelname, record.getMessage()))


def logging_program(world):
    """Log through a RankFilter on every rank; return what passed it."""
    logger = logging.getLogger(f"test_logs.rank{world.pid}")
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    collect = Collect()
    collect.addFilter(logs.RankFilter())
    logger.addHandler(collect)
    try:
        logger.info("before")
        world.sync()
        world.sync()
        logger.debug("debug")
        logger.info("info")
        logger.warning("warning")
        world.allreduce(1)
        logger.error("error")
    finally:
        logger.removeHandler(collect)
    return collect.seen


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_records_carry_rank_and_superstep_info_from_rank_0_warnings_from_all(nprocs):
    require_nprocs(nprocs)
    seen = bsp.run(logging_program, nprocs=nprocs)
    assert seen[0] == [(0, 0, "INFO", "before"), (0, 2, "INFO", "info"), (0, 2, "WARNING", "warning"),
                       (0, 3, "ERROR", "error")]
    for rank in range(1, nprocs):
        assert seen[rank] == [(rank, 2, "WARNING", "warning"), (rank, 3, "ERROR", "error")]


def test_other_thresholds_and_root():
    require_nprocs(2)

    def program(world):
        record = logging.LogRecord("x", logging.DEBUG, __file__, 1, "m", None, None)
        return logs.RankFilter(level=logging.WARNING, others=logging.DEBUG, root=1).filter(record)

    assert bsp.run(program, nprocs=2) == [True, False]


def test_outside_a_run_the_launching_process_is_rank_0():
    record = logging.LogRecord("x", logging.INFO, __file__, 1, "m", None, None)
    assert logs.RankFilter().filter(record)
    assert (record.rank, record.superstep) == (0, "-")
    assert logs.where() == (0, None)


def test_configure_adds_one_handler_that_formats_rank_and_superstep():
    logger = logging.getLogger("test_logs.configure")
    logger.propagate = False
    first, second = io.StringIO(), io.StringIO()
    try:
        logs.configure(stream=first, logger=logger)
        handler = logs.configure(stream=second, logger=logger)
        assert logger.handlers == [handler] and logger.level == logging.INFO
        logger.info("hello")
        logger.debug("not shown")
    finally:
        logger.handlers.clear()
    assert first.getvalue() == ""
    assert second.getvalue() == "INFO rank 0 superstep - test_logs.configure: hello\n"


class Engine:
    """What the progress line reads of an engine."""

    def __init__(self):
        self.superstep = 0
        self.bytes_sent = self.bytes_received = 0


class Clock:
    def __init__(self):
        self.now = 100.0

    def __call__(self):
        return self.now


def test_the_progress_line_shows_on_long_runs_and_is_erased_at_the_end():
    stream, clock, engine = io.StringIO(), Clock(), Engine()
    line = logs.ProgressLine(stream, clock, delay=2.0, interval=0.5)
    for step in range(1, 33):
        engine.superstep, engine.bytes_sent, engine.bytes_received = step, 1024, 1024
        clock.now += 0.125
        line.superstep(engine, 1, 0, None, clock.now, clock.now)
    shown = stream.getvalue().split("\r")[1:]
    assert shown[0] == "[bsp] superstep 16, 2.0 s, rank 0 exchanged 32 KiB\x1b[K"
    assert shown[-1] == "[bsp] superstep 32, 4.0 s, rank 0 exchanged 64 KiB\x1b[K"
    assert len(shown) == 5
    line.close()
    assert stream.getvalue().endswith("\r\x1b[K")


def test_a_short_run_shows_no_progress_line():
    stream, clock = io.StringIO(), Clock()
    line = logs.ProgressLine(stream, clock, delay=2.0)
    clock.now += 1.0
    line.superstep(Engine(), 1, 0, None, clock.now, clock.now)
    line.close()
    assert stream.getvalue() == ""


class Terminal(io.StringIO):
    def isatty(self):
        return True


def test_progress_only_on_a_terminal_and_off_with_bsp_progress_0(monkeypatch):
    monkeypatch.delenv("BSP_PROGRESS", raising=False)
    monkeypatch.setattr("sys.stderr", io.StringIO())
    assert not logs.progress_wanted() and logs.progress_line(0) is None
    monkeypatch.setattr("sys.stderr", Terminal())
    assert logs.progress_wanted() and isinstance(logs.progress_line(0), logs.ProgressLine)
    assert logs.progress_line(1) is None
    for off in ("0", "off", "no", "false"):
        monkeypatch.setenv("BSP_PROGRESS", off)
        assert not logs.progress_wanted()


def engine_class(world):
    return type(world._engine).__name__


def test_rank_0_watches_its_supersteps_only_when_the_progress_line_is_wanted(monkeypatch):
    require_nprocs(2)
    monkeypatch.setattr(logs, "progress_wanted", lambda: True)
    assert bsp.run(engine_class, nprocs=2) == ["ObservedEngine", "Engine"]
    monkeypatch.setattr(logs, "progress_wanted", lambda: False)
    assert bsp.run(engine_class, nprocs=2) == ["Engine", "Engine"]
