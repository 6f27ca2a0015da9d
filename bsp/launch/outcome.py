"""How a rank's run ended, and how the launching process turns the outcomes
of all ranks into results or one error."""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from bsp.errors import BSPError, RemoteError
from bsp.core.wire import Serialized

if TYPE_CHECKING:
    from bsp.observe.profile_observer import RankProfile


class Ending(enum.Enum):
    RETURNED = "returned"   # the program returned; `value` holds its result
    FAILED = "failed"       # the program raised on this rank; `traceback` says what
    DERIVED = "derived"     # the rank stopped because of an error the sync rules raised


@dataclass
class Outcome:
    pid: int
    ending: Ending
    value: Serialized | None = None
    traceback: str | None = None
    error: BSPError | None = None
    profile: RankProfile | None = None      # what the rank recorded, when the run is profiled
    value_type: str = ""                    # the type of `value`, as the rank named it


def resolve(outcomes: list[Outcome]) -> list[Any]:
    """The per-rank results in pid order, or the run's error: RemoteError for
    the lowest failing rank if any rank raised, else the error the sync
    rules raised on every rank."""
    failures = {o.pid: o.traceback or "" for o in outcomes if o.ending is Ending.FAILED}
    if failures:
        raise RemoteError.of(failures)
    for outcome in outcomes:
        if outcome.ending is Ending.DERIVED and outcome.error is not None:
            raise outcome.error
    return [_result(outcome) for outcome in outcomes]


def _result(outcome: Outcome) -> Any:
    """A rank's return value, rebuilt here; BSPError naming the rank and
    the value's type when it cannot be (its class, or a module it needs, is
    missing here; its unpickling raises)."""
    if outcome.value is None:
        return None
    try:
        return outcome.value.load()
    except Exception as error:
        kind = outcome.value_type or "value"
        raise BSPError(f"rank {outcome.pid} returned a {kind} that cannot be rebuilt in the launching "
                       f"process: {type(error).__name__}: {error}") from None
