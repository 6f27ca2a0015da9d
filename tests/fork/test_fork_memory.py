"""The fork backend's handover heap: a large array sent to one rank is copied
once, into the sender's heap, and the receiver keeps that memory as its own
until it lets go of the array; then the sender reuses it."""

import numpy as np
import pytest

from bsp.fork.heap import HEADER, HandoverHeap, mark_free
from bsp.testing import run_spmd, spmd

pytestmark = pytest.mark.mpi_skip

BIG = 1 << 20       # well over the handover threshold


@pytest.fixture
def heap():
    words = memoryview(bytearray(1 << 16)).cast("q")
    return words, HandoverHeap(words, base=4096, capacity=8192)


def test_regions_come_back_when_the_receiver_frees_them(heap):
    words, allocator = heap
    first = allocator.allocate(1000)
    second = allocator.allocate(1000)
    assert first % 64 == 0 and second >= first + 1000
    mark_free(words, first)
    assert allocator.allocate(900) == first          # reused, first fit
    mark_free(words, second)
    third = allocator.allocate(1000)
    assert third <= second                            # no fresh memory needed


def test_free_regions_coalesce_and_the_top_shrinks(heap):
    words, allocator = heap
    offsets = [allocator.allocate(500) for _ in range(4)]
    for offset in offsets:
        mark_free(words, offset)
    assert allocator.allocate(2000) == offsets[0]     # four regions became one


def test_a_full_heap_is_a_memory_error(heap):
    words, allocator = heap
    allocator.allocate(4000)
    with pytest.raises(MemoryError, match="handover heap of 8192 bytes is full"):
        allocator.allocate(5000)


def test_a_region_never_sent_is_taken_back(heap):
    words, allocator = heap
    offset = allocator.allocate(3000)
    allocator.free(offset)
    assert allocator.allocate(3000) == offset
    assert words[(offset - HEADER) // 8] == 1


def heap_in_use(world):
    """Bytes of the heap ever used: reuse keeps it to a few regions."""
    heap = world._engine.transport._heap
    return heap._top - heap._base


@spmd(nprocs=[2, 3])
def test_arrays_kept_by_the_receiver_are_never_overwritten(world):
    kept = []
    right = (world.pid + 1) % world.nprocs
    for step in range(12):
        world.send(np.full(BIG, world.pid * 100 + step, np.int64), right)
        world.sync()
        [(source, array)] = world.messages()
        kept.append((source, step, array))
    for source, step, array in kept:
        assert (array == source * 100 + step).all()


# A region comes back once the receiver, past the next barrier, has let go
# of it, so a few regions are in flight at a time, however many supersteps.
IN_FLIGHT = 4 * (BIG + 64)


def exchange_many(world, read):
    payload = np.ones(BIG, np.uint8)
    for _ in range(40):
        world.send(payload, 1 - world.pid)
        world.sync()
        if read:
            [(_, received)] = world.messages()
            received[:] = 7       # the receiver's own memory: writable
            del received
    return heap_in_use(world)


@pytest.mark.parametrize("read", [True, False], ids=["read", "never read"])
def test_memory_let_go_of_is_reused(read):
    """Whether the receiver reads its messages and then drops them, or never
    reads them at all, the memory comes back to the sender."""
    assert max(run_spmd(exchange_many, 2, {"read": read})) <= IN_FLIGHT


@spmd(nprocs=[3])
def test_data_sent_to_several_ranks_arrives_as_separate_copies(world):
    mine = world.broadcast(np.arange(BIG) if world.pid == 0 else None)
    mine += world.pid
    gathered = world.allgather(mine[:3].tolist())
    assert gathered == [[pid, pid + 1, pid + 2] for pid in range(3)]


@spmd(nprocs=[1, 2])
def test_large_data_sent_to_oneself(world):
    world.send(np.arange(BIG), world.pid)
    world.sync()
    [(source, array)] = world.messages()
    assert source == world.pid and (array == np.arange(BIG)).all()


def test_the_reservation_is_address_space_not_memory():
    import psutil

    from bsp.fork.shared import SharedRegion
    before = psutil.Process().memory_info().rss
    region = SharedRegion(16)
    try:
        assert len(region.map) >= 16 * 3 * region.area_bytes >= 16 * 3 * (1 << 24)
        assert psutil.Process().memory_info().rss - before < 16 << 20
    finally:
        region.close()
