"""The MPI transport's plan of pieces and chunks (under --with-mpi only: the
module loads MPI)."""

import numpy as np
import pytest

from bsp.testing import spmd

pytestmark = pytest.mark.mpi


@pytest.fixture
def transport(monkeypatch):
    from mpi_backend import transport
    monkeypatch.setattr(transport, "CHUNK_BYTES", 100_000)
    monkeypatch.setattr(transport, "BIG_FRAME", 1000)
    return transport


def test_big_frames_go_as_they_are_and_small_ones_are_joined(transport):
    big = np.arange(250_000, dtype=np.uint8)
    frames = [b"head", b"stream", big, b"pad", b"", bytes(500)]
    plan = transport._Plan(frames)
    assert [piece.nbytes for piece in plan.pieces] == [10, 100_000, 100_000, 50_000, 503]
    assert np.shares_memory(np.frombuffer(plan.pieces[1], np.uint8), big)
    joined = b"".join(bytes(memoryview(frame).cast("B")) for frame in frames)
    assert b"".join(bytes(piece) for piece in plan.pieces) == joined
    assert plan.table.tolist() == [10, 100_000, 100_000, 50_000, 503]


def test_runs_of_small_frames_are_cut_at_the_chunk_size(transport):
    plan = transport._Plan([bytes(999)] * 250)
    assert [piece.nbytes for piece in plan.pieces] == [99_900, 99_900, 49_950]


@spmd(nprocs=[2, 4])
def test_a_block_of_many_pieces_arrives_whole(world):
    arrays = [np.full(300_000 + i, world.pid * 10 + i, np.uint8) for i in range(3)]
    for dest in range(world.nprocs):
        world.send(("small", world.pid), dest)
        for array in arrays:
            world.send(array, dest)
        world.send(("end", world.pid), dest)
    world.sync()
    by_source = {}
    for source, obj in world.messages():
        by_source.setdefault(source, []).append(obj)
    for source, objs in by_source.items():
        assert objs[0] == ("small", source) and objs[-1] == ("end", source)
        for i, array in enumerate(objs[1:-1]):
            assert array.shape == (300_000 + i,) and (array == source * 10 + i).all()


@spmd(nprocs=[2, 3, 4])
def test_blocks_in_slots_and_by_nbx_in_one_superstep_arrive_whole(world):
    """At small p a sync is one Alltoall of slots, and the blocks that do not
    fit go by NBX after it: mixed in one superstep, with the slot size
    growing and shrinking between supersteps, every block arrives whole."""
    from mpi_backend.transport import DENSE_RANKS
    assert (world._engine.transport._slots is not None) == (world.nprocs <= DENSE_RANKS)
    rng = np.random.default_rng(7)          # the same draws on every rank
    for step in range(16):
        sizes = rng.choice([0, 0, 8, 200, 3000, 40_000, 200_000], size=(world.nprocs, world.nprocs))
        for dest in range(world.nprocs):
            if sizes[world.pid, dest]:
                world.send(np.full(sizes[world.pid, dest], (world.pid + 3 * dest + step) % 256, np.uint8), dest)
        world.sync()
        got = dict(world.messages())
        assert set(got) == {source for source in range(world.nprocs) if sizes[source, world.pid]}
        for source, array in got.items():
            assert array.shape == (sizes[source, world.pid],)
            assert (array == (source + 3 * world.pid + step) % 256).all()
    # small supersteps after large ones: the slots halve every SHRINK_AFTER of
    # them, back to the smallest (from the largest, 4096 bytes, in 4 steps)
    from mpi_backend.transport import SHRINK_AFTER, SLOT_MIN
    for step in range(4 * SHRINK_AFTER):
        for dest in range(world.nprocs):
            world.send((step, world.pid), dest)
        world.sync()
        assert world.messages() == [(source, (step, source)) for source in range(world.nprocs)]
    slots = world._engine.transport._slots
    if slots is not None:
        assert slots.size == SLOT_MIN
