"""What every rank does, on every backend: run the program, end with the
protocol's last exchange, and report an Outcome."""

from __future__ import annotations

import traceback
from typing import Any, Callable

from .callsite import definition_site
from .engine import Engine
from .outcome import Ending, Outcome
from .transport import Transport
from .wire import Serialized
from .world import World


_running = False


def running_a_rank() -> bool:
    """Whether this process is running a rank's program just now."""
    return _running


def run_rank(transport: Transport, program: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
    """Run `program(world, *args, **kwargs)` on this rank.

    The result is serialized before the last exchange, so that a result that
    cannot be sent becomes this rank's failure, reported to every rank like
    any other exception.
    """
    global _running
    _running = True
    engine = Engine(transport)
    try:
        return _run(engine, program, args, kwargs)
    finally:
        engine.close()
        _running = False


def _run(engine: Engine, program: Callable[..., Any], args: tuple, kwargs: dict) -> Outcome:
    try:
        value = program(World(engine), *args, **kwargs)
        result = _serialized_result(value)
        engine.finish(site=_exit_site(program))
        return Outcome(engine.pid, Ending.RETURNED, value=result)
    except KeyboardInterrupt:
        raise           # Ctrl-C stops the whole run: the launcher decides how
    except BaseException as exc:
        if engine.broken is not None:
            return Outcome(engine.pid, Ending.DERIVED, error=engine.broken)
        text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__.tb_next))
        engine.fail(text)
        return Outcome(engine.pid, Ending.FAILED, traceback=text)


def _serialized_result(value: Any) -> Serialized:
    try:
        return Serialized.of(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the program's return value cannot be sent to the launching process: {exc}") from None


def _exit_site(program: Callable[..., Any]) -> str:
    code = getattr(program, "__code__", None)
    return definition_site(code) if code is not None else repr(program)
