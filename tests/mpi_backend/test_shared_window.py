"""The MPI backend's shared-memory window (mpi_backend/shared_window.py):
large arrays sent to a rank of the same node are handed over, not sent.
Under --with-mpi only.  Where the window is off (one rank per node, as
under MPIR_CVAR_NOLOCAL=1) the same programs take the MPI path and must
give the same answers; the assertions about memory are then skipped."""

import re

import numpy as np
import pytest

import bsp
from bsp.core.plain_arrays import INBAND_LIMIT
from bsp.testing import require_nprocs, spmd
from mpi_backend.shared_window import HANDOVER_MIN
from mpi_backend.transport import SLOT_MAX

pytestmark = pytest.mark.mpi

BIG = 1 << 20           # bytes: over the window's HANDOVER_MIN
SMALL = 1 << 10


def _window(world):
    transport = world._engine.transport
    while hasattr(transport, "inner"):
        transport = transport.inner
    return transport._window


def _in_segment(window, rank, array):
    """Whether `array`'s memory lies in `rank`'s segment of the window."""
    segment = window._segments[rank]
    start = segment.__array_interface__["data"][0]
    address = array.__array_interface__["data"][0]
    return start <= address and address + array.nbytes <= start + segment.nbytes


def _payload(source, dest, step, nbytes=BIG):
    return np.full(nbytes // 8, source * 1000 + dest * 10 + step, np.int64)


@spmd(nprocs=[2, 3, 4])
def test_large_arrays_arrive_intact_in_memory_of_the_senders_segment(world):
    window = _window(world)
    for dest in range(world.nprocs):
        sent = _payload(world.pid, dest, 0)
        world.send(sent, dest)
        sent[:] = -1            # a message is a copy captured at the call
    world.sync()
    arrived = dict(world.messages())
    assert sorted(arrived) == list(range(world.nprocs))
    for source, array in arrived.items():
        assert (array == _payload(source, world.pid, 0)).all()
        assert array.flags.writeable
        if window.shares_memory_with(source):
            assert _in_segment(window, source, array)
        array[:] = 7            # the receiver's own: writing it changes nothing elsewhere
    world.sync()


@spmd(nprocs=[2, 3])
def test_a_receiver_keeps_the_arrays_it_was_sent_over_later_supersteps(world):
    kept = []
    for step in range(6):
        for dest in range(world.nprocs):
            if dest != world.pid:
                world.send(_payload(world.pid, dest, step), dest)
        world.sync()
        arrived = [array for _, array in world.messages()]
        if step % 2 == 0:
            kept.append((step, arrived))    # held while the senders allocate again
        for earlier, arrays in kept:
            sources = [source for source in range(world.nprocs) if source != world.pid]
            for source, array in zip(sources, arrays):
                assert (array == _payload(source, world.pid, earlier)).all(), (step, earlier, source)
    window, others = _window(world), world.nprocs - 1
    if window.shares_memory_with((world.pid + 1) % world.nprocs):
        assert window.held >= len(kept) * others     # handed over, not copied


@spmd(nprocs=[2, 4])
def test_large_and_small_messages_mixed_arrive_in_send_order(world):
    window = _window(world)
    shared = np.arange(BIG // 8)
    for dest in range(world.nprocs):
        world.send(("first", world.pid), dest)
        world.send(_payload(world.pid, dest, 1), dest)
        world.send(_payload(world.pid, dest, 2, SMALL), dest)
        world.send(_payload(world.pid, dest, 3, BIG + 8), dest)
        world.send("x" * 100_000, dest)
        world.send(np.zeros((100, 100), np.float32)[::2], dest)     # not contiguous
    for dest in range(world.nprocs):
        world.send(shared, dest)
    world.sync()
    by_source = {}
    for source, obj in world.messages():
        by_source.setdefault(source, []).append(obj)
    assert sorted(by_source) == list(range(world.nprocs))
    for source, objs in by_source.items():
        first, big, small, bigger, text, strided, common = objs
        assert first == ("first", source) and text == "x" * 100_000
        assert (big == _payload(source, world.pid, 1)).all()
        assert (small == _payload(source, world.pid, 2, SMALL)).all()
        assert (bigger == _payload(source, world.pid, 3, BIG + 8)).all()
        assert strided.shape == (50, 100) and not strided.any()
        assert (common == shared).all()
        if window.shares_memory_with(source):
            assert _in_segment(window, source, big) and _in_segment(window, source, bigger)
    # one capture for every rank (not exclusive): it goes by MPI, from the segment
    assert (world.broadcast(shared + 1 if world.pid == 0 else None) == shared + 1).all()


@spmd(nprocs=[2, 3])
def test_mid_size_arrays_go_in_the_slots_tables_with_no_nbx_round(world):
    """At small p a sync is one collective of slots: a 48 or 256 KiB array
    (out of band: over the wire's INBAND_LIMIT) for a rank of the node is
    handed over, its table of pieces in the slot
    (small messages beside it inline), and once the slots have grown to fit
    the table (at the first such superstep), no NBX round follows.  (The
    3000-byte array is in band: it goes in a slot once they grow to fit it.)"""
    transport = world._engine.transport
    while hasattr(transport, "inner"):
        transport = transport.inner
    slots, window = transport._slots, transport._window
    for step, nbytes in enumerate([48 << 10, 48 << 10, 256 << 10, 3000]):
        for dest in range(world.nprocs):
            world.send(("before", step), dest)
            world.send(_payload(world.pid, dest, step, nbytes), dest)
            world.send(("after", step), dest)
        world.sync()
        if slots is not None and step in (1, 2) and window.shares_memory_with((world.pid + 1) % world.nprocs):
            assert not slots.more
        by_source = {}
        for source, obj in world.messages():
            by_source.setdefault(source, []).append(obj)
        for source, (before, array, after) in by_source.items():
            assert before == ("before", step) and after == ("after", step)
            assert (array == _payload(source, world.pid, step, nbytes)).all()
            if window.shares_memory_with(source):
                handed_from = max(INBAND_LIMIT, SLOT_MAX if slots is not None else HANDOVER_MIN)
                assert _in_segment(window, source, array) == (nbytes >= handed_from)


@spmd(nprocs=[2])
def test_unbuffered_sends_are_handed_over_too(world):
    payload = _payload(world.pid, 1 - world.pid, 4, 3 * BIG)
    world.send(payload, 1 - world.pid, copy=False)
    world.send(payload, 1 - world.pid)
    world.sync()
    (_, first), (_, second) = world.messages()
    assert (first == _payload(1 - world.pid, world.pid, 4, 3 * BIG)).all()
    assert (second == first).all()
    window = _window(world)
    if window.shares_memory_with(1 - world.pid):     # written into the window at the sync, handed over
        assert _in_segment(window, 1 - world.pid, first) and _in_segment(window, 1 - world.pid, second)


_mapped: dict[str, str] = {}


def _window_mapping(world):
    """The line of /proc/self/maps that maps this rank's segment, if any."""
    window = _window(world)
    if world.pid not in window._segments:
        return None
    address = window._segments[world.pid].__array_interface__["data"][0]
    with open("/proc/self/maps") as maps:
        for line in maps:
            start, end = (int(part, 16) for part in line.split()[0].split("-"))
            if start <= address < end:
                return line
    return None


def _fail_mid_superstep(world):
    _mapped["line"] = _window_mapping(world)
    for dest in range(world.nprocs):
        world.send(_payload(world.pid, dest, 5), dest)
    world.sync()
    kept = world.messages()
    for dest in range(world.nprocs):
        world.send(_payload(world.pid, dest, 6), dest)
    if world.pid == 1:
        raise RuntimeError("rank 1 fails with arrays captured and received")
    world.sync()
    return kept


def _kept_windows(world):
    from mpi_backend import shared_window
    return len(shared_window._kept)


def _what_is_left(world):
    line = _mapped.get("line")
    with open("/proc/self/maps") as maps:
        still = line is not None and line in maps.read()
    return still, _kept_windows(world)


def test_a_rank_failing_mid_superstep_leaves_no_window_behind():
    require_nprocs(2)
    kept_before = bsp.run(_kept_windows, nprocs=2)
    with pytest.raises(bsp.RemoteError, match=re.escape("rank 1 fails")):
        bsp.run(_fail_mid_superstep, nprocs=2)
    assert bsp.run(_what_is_left, nprocs=2) == [(False, kept) for kept in kept_before]


_kept_past_the_run: list = []


def _keep_past_the_run(world):
    dest = (world.pid + 1) % world.nprocs
    world.send(_payload(world.pid, dest, 7), dest)
    world.sync()
    _kept_past_the_run[:] = world.messages()


def _check_kept(world):
    (source, array), = _kept_past_the_run
    return bool((array == _payload(source, world.pid, 7)).all())


def test_arrays_kept_past_the_run_stay_valid():
    require_nprocs(2)
    bsp.run(_keep_past_the_run, nprocs=2)
    assert bsp.run(_check_kept, nprocs=2) == [True, True]
    _kept_past_the_run.clear()
    bsp.run(lambda world: _kept_past_the_run.clear(), nprocs=2)


@spmd(nprocs=[2])
def test_a_large_pickle_stream_and_arrays_in_one_block(world):
    dest = 1 - world.pid
    records = [(i, float(i), str(i)) for i in range(50_000)]        # a stream of over 256 KiB
    world.send(records, dest)
    world.send(_payload(world.pid, dest, 8, 100_000), dest)
    world.send(bytearray(b"b" * 70_000), dest, copy=False)
    world.send(_payload(world.pid, dest, 9), dest, copy=False)
    world.sync()
    got = [obj for _, obj in world.messages()]
    assert got[0] == records and bytes(got[2]) == b"b" * 70_000
    assert (got[1] == _payload(dest, world.pid, 8, 100_000)).all()
    assert (got[3] == _payload(dest, world.pid, 9)).all()
    assert all(array.__array_interface__["data"][0] % 64 == 0 for array in (got[1], got[3]))
