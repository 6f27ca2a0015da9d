"""Message delivery: every message exactly once, ordered by source pid then
send order, delivered at the sync and not before, as copies."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsp
from bsp.core.buffers import STREAMING_FROM
from bsp.testing import require_nprocs, spmd

ALL_NPROCS = [1, 2, 3, 4, 16]


@spmd(nprocs=ALL_NPROCS)
def test_every_rank_reaches_every_rank_including_itself(world):
    for dest in range(world.nprocs):
        world.send((world.pid, dest), dest)
    assert world.messages() == []           # nothing arrives before the sync
    world.sync()
    assert world.messages() == [(source, (source, world.pid)) for source in range(world.nprocs)]


@spmd(nprocs=ALL_NPROCS)
def test_messages_are_ordered_by_source_then_send_order(world):
    for dest in reversed(range(world.nprocs)):
        for i in range(3):
            world.send((world.pid, i), dest)
    world.sync()
    expected = [(source, (source, i)) for source in range(world.nprocs) for i in range(3)]
    assert world.messages() == expected


@spmd(nprocs=[1, 2])
def test_two_messages_of_one_object_arrive_as_two_objects(world):
    """Each message is a copy of its own, immutable ones too (which are
    pickled together at the sync): nothing is shared between two messages,
    and what one message shares stays shared."""
    data, pair = b"two bytes", (b"ab", 1)
    for dest in range(world.nprocs):
        for message in (data, data, pair, (pair[0], 2), (data, data), 0.5):
            world.send(message, dest)
    world.sync()
    for source in range(world.nprocs):
        first, second, tuple_, other, shared, _ = [obj for pid, obj in world.messages() if pid == source]
        assert first == second == data and first is not second
        assert tuple_[0] == other[0] and tuple_[0] is not other[0]
        assert shared == (data, data) and shared[0] is shared[1] and shared[0] is not first


@spmd(nprocs=[1, 3])
def test_messages_to_self(world):
    world.send("me", world.pid)
    world.send("me again", world.pid)
    world.sync()
    assert world.messages() == [(world.pid, "me"), (world.pid, "me again")]


@spmd(nprocs=ALL_NPROCS)
def test_empty_supersteps_deliver_nothing(world):
    for _ in range(5):
        world.sync()
        assert world.messages() == []
    assert world.superstep == 5


@spmd(nprocs=[2, 4, 16])
def test_hundreds_of_supersteps_in_a_ring(world):
    right = (world.pid + 1) % world.nprocs
    left = (world.pid - 1) % world.nprocs
    token = world.pid
    for step in range(300):
        world.send((step, token), right)
        world.sync()
        [(source, (sent_step, token))] = world.messages()
        assert (source, sent_step) == (left, step)
    # after 300 hops the token that arrives started 300 ranks to the left
    assert token == (world.pid - 300) % world.nprocs


@spmd(nprocs=[1, 2, 4])
def test_messages_are_gone_after_the_next_sync(world):
    world.send("once", 0)
    world.sync()
    world.sync()
    assert world.messages() == []


@spmd(nprocs=[2, 3])
def test_sent_objects_are_captured_at_send(world):
    array = np.arange(10_000, dtype=np.int64)     # large enough to travel out-of-band
    small = np.arange(4)                          # small enough to travel in-band
    items = [1, 2, 3]
    for dest in range(world.nprocs):
        world.send((array, small, items), dest)
    array[:] = -1
    small[:] = -1
    items.append(4)
    world.sync()
    for _, (got_array, got_small, got_items) in world.messages():
        assert np.array_equal(got_array, np.arange(10_000))
        assert np.array_equal(got_small, np.arange(4))
        assert got_items == [1, 2, 3]


@spmd(nprocs=[1, 2, 3])
def test_a_large_array_is_captured_whole_at_send(world):
    """An array of STREAMING_FROM bytes and more (which the compiled build
    copies with streaming stores), of an odd size, from an odd offset, to
    every rank: what arrives is the array as it was at the send, every byte."""
    length = STREAMING_FROM + 4099
    whole = np.random.default_rng(world.pid).integers(0, 256, length + 3, dtype=np.uint8)
    payload = whole[3:]                 # not aligned to 16 bytes
    expected = payload.copy()
    for dest in range(world.nprocs):
        world.send(payload, dest)
    payload[:] = 0
    world.sync()
    for source, got in world.messages():
        assert got.nbytes == length
        assert np.array_equal(got, np.random.default_rng(source).integers(0, 256, length + 3, dtype=np.uint8)[3:])
    assert np.array_equal(expected, np.random.default_rng(world.pid).integers(0, 256, length + 3, dtype=np.uint8)[3:])


@spmd(nprocs=[2])
def test_received_objects_are_the_receivers_own(world):
    array = np.zeros(100_000)
    world.send(array, world.pid)
    world.send(array, world.pid)
    world.sync()
    (_, first), (_, second) = world.messages()
    first += 1
    assert second.sum() == 0 and array.sum() == 0
    assert first.flags.writeable and first.flags.aligned


@spmd(nprocs=[2])
def test_a_lambda_payload_arrives_and_can_be_called(world):
    scale = world.pid + 10
    world.send(lambda x: x * scale, 1 - world.pid)
    world.sync()
    [(source, function)] = world.messages()
    assert function(2) == 2 * (source + 10)


@spmd(nprocs=[3])
def test_queues_are_independent_channels(world):
    first, second = world.queue(), world.queue()
    first.send(("first", world.pid), 0)
    second.send(("second", world.pid), 0)
    world.send(("default", world.pid), 0)
    world.sync()
    if world.pid == 0:
        assert list(first) == [(s, ("first", s)) for s in range(3)]
        assert list(second) == [(s, ("second", s)) for s in range(3)]
        assert world.messages() == [(s, ("default", s)) for s in range(3)]
        assert len(first) == 3
    else:
        assert list(first) == list(second) == world.messages() == []


@spmd(nprocs=[2])
def test_a_superstep_may_carry_a_100_MB_array_per_rank(world):
    payload = np.full(100 * 2**20 // 8, world.pid, dtype=np.float64)
    world.send(payload, 1 - world.pid)
    del payload
    world.sync()
    [(source, received)] = world.messages()
    assert received.nbytes == 100 * 2**20
    assert source == 1 - world.pid and received[0] == received[-1] == source


# -- random programs against a sequential model of BSP delivery -------------

def _plans(max_nprocs=4, max_supersteps=4):
    def plan(nprocs):
        sends = st.lists(st.tuples(st.integers(0, nprocs - 1), st.integers(-1000, 1000)), max_size=5)
        supersteps = st.lists(st.lists(sends, min_size=nprocs, max_size=nprocs), max_size=max_supersteps)
        return st.tuples(st.just(nprocs), supersteps)
    return st.integers(1, max_nprocs).flatmap(plan)


def _execute(world, plan):
    """Carry out this rank's part of the plan; return what arrived at each sync."""
    received = []
    for superstep in plan:
        for dest, value in superstep[world.pid]:
            world.send((world.pid, value), dest)
        world.sync()
        received.append(world.messages())
    return received


def _model(nprocs, plan):
    """BSP delivery, computed sequentially: at each sync, every message sent
    in the superstep, grouped by source in pid order, then in send order."""
    return [[[(source, (source, value))
              for source in range(nprocs)
              for dest, value in superstep[source] if dest == pid]
             for superstep in plan]
            for pid in range(nprocs)]


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(_plans())
def test_random_programs_match_the_sequential_model(nprocs_and_plan):
    nprocs, plan = nprocs_and_plan
    require_nprocs(nprocs)
    assert bsp.run(_execute, plan, nprocs=nprocs) == _model(nprocs, plan)


@spmd(nprocs=[1, 2, 3])
def test_later_messages_to_one_rank_decode_with_their_own_repeated_objects(world):
    # Each message repeats objects inside itself (dict keys, a shared list):
    # a decoder that carried state from one message to the next would
    # resolve the second message's back-references to the first one's.
    shared = [world.pid]
    payloads = [[{"key": 1}, {"key": 2}], [{"name": 3}, {"name": 4}], (shared, shared, "s", "s")]
    for payload in payloads:
        world.send(payload, 0)
    world.sync()
    if world.pid == 0:
        arrived = world.messages()
        assert arrived == [(source, payload) for source in range(world.nprocs) for payload in
                           [[{"key": 1}, {"key": 2}], [{"name": 3}, {"name": 4}], ([source], [source], "s", "s")]]
        for _, (first, second, *_) in arrived[2::3]:
            assert first is second


@spmd(nprocs=[2, 3])
def test_immutable_messages_pickled_at_the_sync_keep_their_place_among_the_others(world):
    # ints, floats, strings, None and tuples of them wait for the sync and
    # travel as one batch; a list, an array and a tuple holding a list are
    # captured at the send.  The order is the send order all the same.
    dest = (world.pid + 1) % world.nprocs
    box = [1]
    sent = [1, 2.5, "three", None, (4, "four"), box, 5, (6, box), np.arange(3), b"seven", True, 8]
    for obj in sent:
        world.send(obj, dest)
    box.append("changed after the send")
    world.sync()
    source = (world.pid - 1) % world.nprocs
    got = [obj for _, obj in world.messages()]
    assert [type(obj) for obj in got] == [type(obj) for obj in sent]
    assert got[:5] == [1, 2.5, "three", None, (4, "four")]
    assert got[5] == [1] and got[7] == (6, [1])
    assert got[6] == 5 and (got[8] == np.arange(3)).all() and got[9:] == [b"seven", True, 8]
    assert all(s == source for s, _ in world.messages())


@spmd(nprocs=[2, 4])
def test_supersteps_of_unequal_length_deliver_each_to_its_own_sync(world):
    # Ranks race ahead by one exchange at most; a block that arrives early
    # (MPI: from a rank already in the next exchange) belongs to the next sync.
    dest = (world.pid + 1) % world.nprocs
    for step in range(60):
        count = (step * (world.pid + 1)) % 5
        for i in range(count):
            world.send((step, i), dest)
        if step % 7 == 0:
            world.send(np.full(70_000 + step, step, np.uint8), dest)      # a block of several pieces
        world.sync()
        source = (world.pid - 1) % world.nprocs
        expected = [(step, i) for i in range((step * (source + 1)) % 5)]
        got = [obj for _, obj in world.messages()]
        if step % 7 == 0:
            array = got.pop()
            assert array.shape == (70_000 + step,) and (array == step).all()
        assert got == expected
