"""What every rank does, on every backend: run the program, end with the
protocol's last exchange, and report an Outcome.

The rank runner knows no observer by name: whoever starts a rank passes
the observers of its supersteps in (see `bsp.launch.observers`, which chooses the
profile's recorder, the progress line and the recording).  It also keeps
which engine this process runs just now, for `bsp.observe.logs` and the checks
that refuse a nested run."""

from __future__ import annotations

import contextlib
import traceback
from typing import Any, Callable, Iterator, Sequence

from bsp.base.callsite import definition_site
from bsp.checkpoint.world_checkpoints import CHECKPOINTING
from bsp.core.engine import Engine
from bsp.core.observed_engine import ObservedEngine, SuperstepObserver
from bsp.launch.outcome import Ending, Outcome
from bsp.core.transport import Transport
from bsp.core.wire import Serialized
from bsp.base.tracebacks import user_traceback
from bsp.errors import brief_traceback
from bsp.world import World


class Interrupted(KeyboardInterrupt):
    """Ctrl-C in the launching process (MPI rank 0), during a run: the
    launcher ends the run.  A KeyboardInterrupt that the program raises
    itself is a failure of that rank, like any other exception."""


class Stopped(BaseException):
    """The launcher ends this rank (SIGTERM): the program's clean-up
    (finally blocks, context managers) runs on the way out."""


_engine: Engine | None = None       # the engine of the rank this process runs just now


def running_a_rank() -> bool:
    """Whether this process is running a rank's program just now."""
    return _engine is not None


def current_engine() -> Engine | None:
    """The engine of the rank this process runs just now, or None."""
    return _engine


@contextlib.contextmanager
def rank_running(engine: Engine) -> Iterator[None]:
    """While this process runs the rank of `engine` (see current_engine);
    the engine is closed at the end."""
    global _engine
    _engine = engine
    try:
        yield
    finally:
        engine.close()
        _engine = None


def run_program(transport: Transport, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                observers: Sequence[SuperstepObserver] = ()) -> Outcome:
    """Run `program(world, *args, **kwargs)` on this rank, its supersteps
    watched by `observers` (none: a plain Engine, which does no per-sync
    work for them; see bsp.core.observed_engine.ObservedEngine).

    The result is serialized before the last exchange, so that a result that
    cannot be sent becomes this rank's failure, reported to every rank like
    any other exception.
    """
    engine = ObservedEngine(transport, observers) if observers else Engine(transport)
    with rank_running(engine):
        return _run(engine, program, args, kwargs)


def _run(engine: Engine, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Outcome:
    try:
        value = program(World(engine, CHECKPOINTING), *args, **kwargs)
        result = _serialized_result(value)
        engine.finish(site=exit_site(program))
        return Outcome(engine.pid, Ending.RETURNED, value=result, value_type=_type_name(value))
    except (Interrupted, Stopped):
        raise           # the launcher ends the run: it decides how
    except BaseException as exc:
        if engine.broken is not None:
            return Outcome(engine.pid, Ending.DERIVED, error=engine.broken)
        frames = exc.__traceback__ and exc.__traceback__.tb_next
        # the user's frames: none of pybsp's unless BSP_DEBUG; a message of 200 MB cut (see brief_traceback)
        text = brief_traceback(exc, frames) or user_traceback(exc, frames)
        engine.fail(text)
        return Outcome(engine.pid, Ending.FAILED, traceback=text)


def _type_name(value: Any) -> str:
    kind = type(value)
    return kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"


def _serialized_result(value: Any) -> Serialized:
    try:
        return Serialized.of(value)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the program's return value cannot be sent to the launching process: {exc}") from None


def exit_site(program: Callable[..., Any]) -> str:
    code = getattr(program, "__code__", None)
    return definition_site(code) if code is not None else repr(program)
