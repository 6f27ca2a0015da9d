"""The superstep engine on its own: ranks are threads over the in-memory
loopback transport (tests/loopback.py), so the sync rules, mismatches and
the order of delivery are checked with no process at all."""

from __future__ import annotations

import operator

import pytest

import bsp
from bsp.errors import RemoteError, SyncMismatchError
from bsp.launch.outcome import Ending

from loopback import run, run_outcomes


def test_messages_arrive_at_the_next_sync_in_source_then_send_order() -> None:
    def program(world: bsp.World) -> list[tuple[int, object]]:
        for dest in range(world.nprocs):
            world.send((world.pid, "first"), dest)
            world.send((world.pid, "second"), dest)
        assert world.messages() == []           # nothing before the sync
        world.sync()
        return list(world.messages())

    for received in run(program, 3):
        assert received == [(source, (source, order)) for source in range(3) for order in ("first", "second")]


def test_what_is_sent_is_captured_when_it_is_queued() -> None:
    def program(world: bsp.World) -> object:
        payload = [world.pid]
        world.send(payload, (world.pid + 1) % world.nprocs)
        payload.append("changed after send")
        world.sync()
        return world.messages()[0][1]

    assert run(program, 2) == [[1], [0]]


def test_a_collective_is_one_superstep_and_counts_in_the_engine() -> None:
    def program(world: bsp.World) -> tuple[int, int]:
        total = world.allreduce(world.pid + 1, op=operator.add)
        return total, world.engine.superstep

    assert run(program, 4) == [(10, 1)] * 4


def test_sync_against_a_collective_is_a_mismatch_on_every_rank() -> None:
    def program(world: bsp.World) -> None:
        if world.pid == 0:
            world.sync()
        else:
            world.allreduce(1)

    outcomes = run_outcomes(program, 2)
    assert [outcome.ending for outcome in outcomes] == [Ending.DERIVED] * 2
    for outcome in outcomes:
        assert isinstance(outcome.error, SyncMismatchError)
        assert "test_engine.py" in str(outcome.error)           # the call sites are named
    with pytest.raises(SyncMismatchError):
        run(program, 2)


def test_a_rank_that_returns_while_another_syncs_is_a_mismatch() -> None:
    def program(world: bsp.World) -> None:
        if world.pid == 1:
            world.sync()

    with pytest.raises(SyncMismatchError, match="rank 0: returned from the program"):
        run(program, 2)


def test_a_raising_rank_is_a_remote_error_everywhere_with_its_traceback() -> None:
    def program(world: bsp.World) -> None:
        if world.pid == 1:
            raise KeyError("boom on rank 1")
        world.sync()

    outcomes = run_outcomes(program, 3)
    assert outcomes[1].ending is Ending.FAILED and "boom on rank 1" in (outcomes[1].traceback or "")
    for pid in (0, 2):
        error = outcomes[pid].error
        assert outcomes[pid].ending is Ending.DERIVED and isinstance(error, RemoteError) and error.rank == 1
    with pytest.raises(RemoteError) as caught:
        run(program, 3)
    assert caught.value.rank == 1 and "boom on rank 1" in caught.value.remote_traceback


def test_the_lowest_failing_rank_is_the_error_and_all_failures_travel() -> None:
    def program(world: bsp.World) -> None:
        if world.pid > 0:
            raise ValueError(f"rank {world.pid} fails")
        world.sync()

    with pytest.raises(RemoteError) as caught:
        run(program, 3)
    assert caught.value.rank == 1 and sorted(caught.value.failures) == [1, 2]


def test_gets_read_the_image_before_the_superstep_s_puts_and_cost_a_second_exchange() -> None:
    def program(world: bsp.World) -> tuple[int, int, int]:
        var = world.var(world.pid * 10)
        world.sync()
        before = world.engine.exchanges
        got = var.get((world.pid + 1) % world.nprocs)
        var.put(world.pid * 10 + 1, (world.pid + 1) % world.nprocs)
        world.sync()
        return got.value, var.value, world.engine.exchanges - before

    results = run(program, 3)
    for pid, (got, value, exchanges) in enumerate(results):
        assert got == ((pid + 1) % 3) * 10                # the image before the put
        assert value == ((pid - 1) % 3) * 10 + 1          # the put, applied after the gets were served
        assert exchanges == 2                             # the sync's exchange and the replies' round


def test_a_superstep_without_gets_is_one_exchange() -> None:
    def program(world: bsp.World) -> int:
        var = world.var(0)
        world.sync()
        before = world.engine.exchanges
        var.put(world.pid, (world.pid + 1) % world.nprocs)
        world.sync()
        return world.engine.exchanges - before

    assert run(program, 2) == [1, 1]


def test_creating_data_objects_in_different_orders_is_a_mismatch() -> None:
    def program(world: bsp.World) -> None:
        if world.pid == 0:
            world.var(0)
            world.queue()
        else:
            world.queue()
            world.var(0)
        world.sync()

    with pytest.raises(SyncMismatchError):
        run(program, 2)


def test_after_an_error_the_engine_is_broken_and_raises_without_communicating() -> None:
    later: list[BaseException] = []            # the loopback's ranks are threads of this process

    def program(world: bsp.World) -> None:
        if world.pid == 0:
            raise RuntimeError("first")
        with pytest.raises(RemoteError) as first:
            world.sync()
        with pytest.raises(RemoteError) as again:
            world.sync()                   # no other rank exchanges again: this must not wait
        later.extend([first.value, again.value])

    outcomes = run_outcomes(program, 2)
    assert outcomes[1].ending is Ending.DERIVED and outcomes[1].error is later[0] is later[1]
