"""world.coarray: puts and gets of numpy slices, checked at the call."""

import numpy as np
import pytest

from bsp.testing import spmd


@spmd(nprocs=[1, 2, 3, 4])
def test_puts_of_slices_into_other_ranks(world):
    xs = world.coarray(4 * world.nprocs, dtype=np.int64)
    for dest in range(world.nprocs):
        xs.put(np.full(4, world.pid), dest, slice(4 * world.pid, 4 * world.pid + 4))
    world.sync()
    assert (xs.local == np.repeat(np.arange(world.nprocs), 4)).all()


@spmd(nprocs=[2, 3])
def test_indexing_sugar_reads_like_bulk(world):
    xs = world.coarray(np.arange(10.0) + 100 * world.pid)
    right = (world.pid + 1) % world.nprocs
    xs[right, 0:2] = [-1, -2]
    window = xs[right, 5:8]
    whole = xs[right]
    world.sync()
    assert xs.local[:2].tolist() == [-1, -2] and xs.local[2] == 100 * world.pid + 2
    assert window.value.tolist() == [100 * right + 5, 100 * right + 6, 100 * right + 7]
    assert (whole.value == np.arange(10.0) + 100 * right).all()      # before the puts


@spmd(nprocs=[2])
def test_two_dimensional_coarrays_and_scalars(world):
    xs = world.coarray((3, 4), dtype=np.float32)
    xs[1 - world.pid, 1, :] = 7             # broadcast a scalar over a row
    xs[1 - world.pid, 2, 3] = 9.5           # one element
    corner = xs.get(1 - world.pid, (slice(0, 2), slice(0, 2)))
    world.sync()
    assert xs.local[1].tolist() == [7, 7, 7, 7] and xs.local[2, 3] == 9.5
    assert corner.value.shape == (2, 2) and corner.value.dtype == np.float32


@spmd(nprocs=[2])
def test_large_puts_and_gets(world):
    xs = world.coarray(1 << 20, dtype=np.float64)
    xs.local[:] = world.pid
    xs[1 - world.pid, :1000] = np.arange(1000.0)
    got = xs[1 - world.pid]
    world.sync()
    assert (got.value == 1 - world.pid).all()
    assert (xs.local[:1000] == np.arange(1000.0)).all() and (xs.local[1000:] == world.pid).all()


@spmd(nprocs=[1, 2])
def test_single_elements_of_a_non_native_byte_order(world):
    # indexing one element gives a numpy scalar in native byte order; the
    # reply must still carry the coarray's own bytes
    xs = world.coarray(np.arange(12, dtype=">i4").reshape(3, 4))
    element = xs.get(world.nprocs - 1, (2, 3))
    world.sync()
    assert element.value.dtype == np.dtype(">i4") and element.value == 11


@spmd(nprocs=[1, 2])
def test_empty_regions_and_datetimes_travel(world):
    xs = world.coarray(np.arange(6).astype("M8[s]").reshape(2, 3))
    other = world.nprocs - 1 - world.pid
    xs.put(np.array([], dtype="M8[s]"), other, (slice(1, 1), 0))
    xs.put(np.array(["2026-12-01T06:00:00"] * 3, dtype="M8[s]"), other, 0)
    empty, row = xs.get(other, (slice(2, 1), slice(None))), xs.get(other, 1)
    world.sync()
    assert empty.value.shape == (0, 3) and row.value.tolist() == np.arange(3, 6).astype("M8[s]").tolist()
    assert (xs.local[0] == np.datetime64("2026-12-01T06:00:00")).all()


@spmd(nprocs=[2])
def test_values_are_captured_at_the_put(world):
    xs = world.coarray(100_000, dtype=np.int64)
    values = np.arange(100_000)
    xs[1 - world.pid] = values
    values[:] = 0
    world.sync()
    assert (xs.local == np.arange(100_000)).all()


@spmd(nprocs=[2])
def test_bounds_shape_and_dtype_are_checked_at_the_call(world):
    xs = world.coarray(10, dtype=np.int32)
    with pytest.raises(IndexError, match="slice 5:12 is out of bounds for axis 0 of size 10"):
        xs[1, 5:12] = 0
    with pytest.raises(IndexError, match="out of bounds"):
        xs.put(1, 0, 10)
    with pytest.raises(ValueError, match=r"cannot put values of shape \(3,\) into index slice\(0, 2, None\)"):
        xs[0, 0:2] = [1, 2, 3]
    with pytest.raises(TypeError, match="cannot put float64 values into a coarray of int32"):
        xs[0, 0:2] = [1.5, 2.5]
    with pytest.raises(TypeError, match="coarray indices are ints, slices and Ellipsis"):
        xs.put([1, 2], 0, [0, 1])
    with pytest.raises(ValueError, match="dest 2 is out of range"):
        xs[2, 0] = 1
    with pytest.raises(IndexError, match="out of bounds"):
        xs.get(0, slice(-11, None))
    world.sync()
    assert (xs.local == 0).all()


def test_object_arrays_are_refused():
    @spmd(nprocs=[1])
    def body(world):
        with pytest.raises(TypeError, match="holds numbers"):
            world.coarray(np.array([None, 1], dtype=object))
    body()
