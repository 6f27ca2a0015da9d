"""How the launching process turns the ranks' Outcomes into results or one
error (bsp.launch.outcome.resolve)."""

from __future__ import annotations

import pytest

from bsp.errors import RankDiedError, RemoteError, SyncMismatchError
from bsp.launch.outcome import Ending, Outcome, resolve
from bsp.core.wire import Serialized


def returned(pid: int, value: object) -> Outcome:
    return Outcome(pid, Ending.RETURNED, value=Serialized.of(value))


def test_results_come_back_in_pid_order_as_loaded_copies() -> None:
    payload = {"rank": 1}
    results = resolve([returned(0, "zero"), returned(1, payload), returned(2, None)])
    assert results == ["zero", {"rank": 1}, None] and results[1] is not payload


def test_the_lowest_failing_rank_is_raised_carrying_every_failure() -> None:
    mismatch = SyncMismatchError("ranks disagree")
    outcomes = [Outcome(0, Ending.DERIVED, error=mismatch), Outcome(1, Ending.FAILED, traceback="tb of 1"),
                Outcome(2, Ending.FAILED, traceback="tb of 2"), returned(3, 3)]
    with pytest.raises(RemoteError) as caught:
        resolve(outcomes)
    assert caught.value.rank == 1 and caught.value.remote_traceback == "tb of 1"
    assert caught.value.failures == {1: "tb of 1", 2: "tb of 2"}


def test_without_failures_the_error_the_sync_rules_raised_is_the_run_s() -> None:
    died = RankDiedError(1, "killed by SIGKILL")
    with pytest.raises(RankDiedError) as caught:
        resolve([returned(0, 0), Outcome(1, Ending.DERIVED, error=died)])
    assert caught.value is died


def test_remote_error_of_picks_the_lowest_rank() -> None:
    error = RemoteError.of({4: "four", 2: "two"})
    assert (error.rank, error.remote_traceback, error.failures) == (2, "two", {4: "four", 2: "two"})
