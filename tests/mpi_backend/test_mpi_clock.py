"""mpi_backend.clock: the MPI sync timeout counts only time the rank ran
(issue 16, item 9), read from a clock under the test's control."""

import pytest

from mpi_backend import clock


@pytest.fixture
def now(monkeypatch):
    """The monotonic clock, as a one-element list the test moves forward."""
    reading = [100.0]
    monkeypatch.setattr(clock.time, "monotonic", lambda: reading[0])
    return reading


def test_running_time_adds_the_gaps_between_looks(now):
    running = clock.RunningClock()
    for _ in range(10):
        now[0] += 0.25
        running.seconds()
    assert running.seconds() == pytest.approx(2.5)


def test_a_jump_longer_than_a_look_can_take_is_a_stop_and_does_not_count(now):
    running = clock.RunningClock()
    now[0] += 0.5
    running.seconds()
    now[0] += 8.0                   # the job stopped for 8 s between two looks
    assert running.seconds() == pytest.approx(0.5)
    now[0] += 0.75
    assert running.seconds() == pytest.approx(1.25)
