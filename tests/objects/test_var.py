"""world.var: puts, gets and their order within a sync."""

import numpy as np
import pytest

import bsp
from bsp.testing import spmd


@spmd(nprocs=[1, 2, 3, 4])
def test_put_writes_the_destination_image_at_the_sync(world):
    v = world.var(("start", world.pid))
    right = (world.pid + 1) % world.nprocs
    v.put(("from", world.pid), right)
    assert v.value == ("start", world.pid)        # not before the sync
    world.sync()
    assert v.value == ("from", (world.pid - 1) % world.nprocs)


@spmd(nprocs=[1, 3])
def test_get_returns_a_future_valid_after_the_sync(world):
    v = world.var(world.pid * 10)
    left = (world.pid - 1) % world.nprocs
    future = v.get(left)
    assert not future.ready
    with pytest.raises(bsp.BSPError, match=r"not there yet: a get issued in superstep 0 completes"):
        future.value
    world.sync()
    assert future.ready and future.value == left * 10


@spmd(nprocs=[2, 3])
def test_gets_see_the_images_from_before_the_puts_of_the_same_superstep(world):
    v = world.var("old")
    v.value = f"local {world.pid}"          # a local write: part of this superstep's image
    right = (world.pid + 1) % world.nprocs
    v.put(f"new {world.pid}", right)
    seen = v.get(right)
    world.sync()
    assert seen.value == f"local {right}"
    assert v.value == f"new {(world.pid - 1) % world.nprocs}"


@spmd(nprocs=[3])
def test_several_puts_to_one_image_resolve_by_source_then_put_order(world):
    v = world.var(None)
    for i in range(2):
        v.put((world.pid, i), 0)
    world.sync()
    if world.pid == 0:
        assert v.value == (2, 1)          # the last put of the highest source wins
    else:
        assert v.value is None


@spmd(nprocs=[2])
def test_put_captures_the_value_when_called(world):
    v = world.var(None)
    data = np.arange(100_000)
    v.put(data, 1 - world.pid)
    data[:] = -1
    world.sync()
    assert (v.value == np.arange(100_000)).all()


@spmd(nprocs=[2])
def test_a_var_and_messages_in_the_same_superstep(world):
    v = world.var(0)
    world.send("hello", 1 - world.pid)
    v.put(world.pid + 1, 1 - world.pid)
    got = v.get(1 - world.pid)
    world.sync()
    assert world.messages() == [(1 - world.pid, "hello")]
    assert v.value == 2 - world.pid and got.value == 0


@spmd(nprocs=[2])
def test_bad_arguments(world):
    v = world.var(0)
    with pytest.raises(ValueError, match="dest 2 is out of range"):
        v.put(1, 2)
    with pytest.raises(ValueError, match="source -1 is out of range"):
        v.get(-1)
    with pytest.raises(TypeError, match="'generator' object"):
        v.put((x for x in []), 0)


@spmd(nprocs=[2])
def test_gets_cost_a_second_barrier_only_when_made(world):
    v = world.var(world.pid)
    engine = world._engine
    world.sync()
    assert engine.exchanges == 1
    v.get(0)
    world.sync()
    assert engine.exchanges == 3 and world.superstep == 2
