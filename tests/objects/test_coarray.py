"""world.coarray: puts and gets of numpy slices, checked at the call."""

import numpy as np
import pytest

import bsp
from bsp.launch.bsp_run import run_with_timeout
from bsp.testing import require_nprocs, spmd


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


# Advanced indices as numpy reads them: fewer arrays than axes, arrays mixed
# with ints and slices (adjacent, or separated: the picked axes go first).
ADVANCED = [np.array([4, 0, 2]), np.array([5, 1]), (slice(None), [2, 0]), ([[1], [2]], slice(1, 3)),
            (Ellipsis, [-1, 0]), (0, slice(None), [1, 3]), (slice(0, 1), [0, 2], [[3], [1]]), ([1, 1], 0)]


@spmd(nprocs=[1, 2])
def test_integer_array_indices_follow_numpy_advanced_indexing(world):
    other = (world.pid + 1) % world.nprocs
    shapes = {2: (6, 3), 3: (2, 3, 4)}
    image = {ndim: np.arange(np.prod(shape), dtype=np.float64).reshape(shape) for ndim, shape in shapes.items()}
    xs = {ndim: world.coarray(image[ndim].copy()) for ndim in shapes}
    fits = [(index, ndim) for index in ADVANCED for ndim in shapes if _numpy_takes(image[ndim], index)]
    early = [xs[ndim].get(other, index) for index, ndim in fits]        # checked at the sync
    world.sync()
    late = [xs[ndim].get(other, index) for index, ndim in fits]         # checked at the call
    world.sync()
    for (index, ndim), first, second in zip(fits, early, late):
        assert np.array_equal(first.value, image[ndim][index]) and np.array_equal(second.value, first.value)
    for number, (index, ndim) in enumerate(fits):
        expected = image[ndim].copy()
        values = -np.arange(1, expected[index].size + 1, dtype=np.float64).reshape(expected[index].shape)
        expected[index] = values
        xs[ndim].put(values, other, index)
        world.sync()
        assert np.array_equal(xs[ndim].local, expected), (index, ndim)
        xs[ndim].local[...] = image[ndim]
        world.sync()
    with pytest.raises(IndexError, match=r"index 6 is out of bounds for axis 0 of size 6"):
        xs[2].put(0.0, other, np.array([6, 0]))


def _numpy_takes(image, index):
    try:
        image[index]
    except IndexError:
        return False
    return True


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
    element, rows = xs.get(world.nprocs - 1, (2, 3)), xs.get(world.nprocs - 1, ([2, 0], [3, 1]))
    world.sync()
    assert element.value.dtype == np.dtype(">i4") and element.value == 11
    assert rows.value.dtype == np.dtype(">i4") and rows.value.tolist() == [11, 1]


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
    world.sync()                            # from here on, every rank's shape is known
    with pytest.raises(IndexError, match=r"slice 5:12 is out of bounds for axis 0 of size 10 "
                                         r"\(rank 1's image has shape \(10,\)\)"):
        xs[1, 5:12] = 0
    with pytest.raises(IndexError, match=r"index 10 is out of bounds for axis 0 of size 10"):
        xs.put(1, 0, 10)
    with pytest.raises(IndexError, match=r"index -11 is out of bounds"):
        xs[1, -11] = 1
    with pytest.raises(IndexError, match=r"index 10 is out of bounds"):
        xs.put([1, 2], 1, np.array([3, 10]))
    with pytest.raises(ValueError, match=r"cannot put values of shape \(3,\) into index slice\(0, 2, None\)"):
        xs[0, 0:2] = [1, 2, 3]
    with pytest.raises(TypeError, match="cannot put float64 values into a coarray of int32"):
        xs[0, 0:2] = [1.5, 2.5]
    with pytest.raises(TypeError, match="cannot put float64 values into a coarray of int32"):
        xs[0, 3] = 1.5
    with pytest.raises(TypeError, match="coarray indices are ints, slices and Ellipsis"):
        xs.put(1, 0, 1.0)
    with pytest.raises(TypeError, match="boolean masks are not coarray indices"):
        xs.put(1, 0, np.ones(10, bool))
    with pytest.raises(ValueError, match="dest 2 is out of range"):
        xs[2, 0] = 1
    with pytest.raises(IndexError, match="out of bounds"):
        xs.get(0, slice(-11, None))
    with pytest.raises(IndexError, match="out of bounds"):
        xs[1, 10]
    world.sync()
    assert (xs.local == 0).all()


def test_object_arrays_are_refused():
    @spmd(nprocs=[1])
    def body(world):
        with pytest.raises(TypeError, match="holds numbers"):
            world.coarray(np.array([None, 1], dtype=object))
    body()


# -- per-rank shapes --------------------------------------------------------------

@spmd(nprocs=[1, 2, 3, 4])
def test_images_may_differ_in_size_from_rank_to_rank_and_be_empty(world):
    xs = world.coarray(world.pid, dtype=np.int64)         # rank 0's image is empty
    assert xs.shape_of(world.pid) == (world.pid,)
    if world.nprocs > 1:
        with pytest.raises(bsp.BSPError, match="known from the sync after the coarray was created"):
            xs.shape_of((world.pid + 1) % world.nprocs)
    world.sync()
    assert [xs.shape_of(pid) for pid in range(world.nprocs)] == [(pid,) for pid in range(world.nprocs)]
    for dest in range(1, world.nprocs):
        xs[dest, world.pid % dest] = 100 + world.pid         # one element of each non-empty image
        xs[dest, dest:] = -1                                 # an empty slice at the end: nothing
    xs[0, 0:0] = []                                          # an empty put into an empty image
    with pytest.raises(IndexError, match=r"index 0 is out of bounds for axis 0 of size 0 "
                                         r"\(rank 0's image has shape \(0,\)\)"):
        xs[0, 0] = 1
    lengths = [xs.get(pid) for pid in range(world.nprocs)]
    world.sync()
    for pid, got in enumerate(lengths):
        assert got.value.shape == (pid,)
    expected = np.zeros(world.pid, np.int64)
    for source in range(world.nprocs):                      # put order: by source, the last wins
        if world.pid:
            expected[source % world.pid] = 100 + source
    assert xs.local.tolist() == expected.tolist()


@spmd(nprocs=[2, 3])
def test_two_dimensional_images_of_different_shapes(world):
    xs = world.coarray((world.pid + 1, 3), dtype=np.float32)
    world.sync()
    right = (world.pid + 1) % world.nprocs
    rows = xs.shape_of(right)[0]
    xs[right, rows - 1, :] = world.pid          # the last row of the right neighbour's image
    world.sync()
    left = (world.pid - 1) % world.nprocs
    assert xs.local[-1].tolist() == [left] * 3 and (xs.local[:-1] == 0).all()


def test_ranks_that_disagree_on_dtype_or_ndim_are_a_mismatch():
    def differing_dtype(world):
        world.coarray(4, dtype=np.float64 if world.pid == 0 else np.float32)
        world.sync()

    def differing_ndim(world):
        world.coarray(4 if world.pid == 0 else (2, 2))
        world.sync()

    require_nprocs(2)
    with pytest.raises(bsp.SyncMismatchError, match=r"coarray \(1-D float64\)"):
        run_with_timeout(differing_dtype, (), {}, nprocs=2, timeout=60)
    with pytest.raises(bsp.SyncMismatchError, match=r"coarray \(2-D float64\)"):
        run_with_timeout(differing_ndim, (), {}, nprocs=2, timeout=60)


@spmd(nprocs=[2, 3])
def test_puts_and_gets_before_the_shapes_are_known_are_checked_at_that_sync(world):
    xs = world.coarray(4 + world.pid, dtype=np.int64)
    right = (world.pid + 1) % world.nprocs
    xs[right, 3] = 7                        # fits every image: applied at the sync
    xs[right, -1] = 8                       # the last element of the right neighbour's image
    xs.put([1, 2], right, np.array([0, 1]), op=np.add)
    tail = xs[right, 2:]                    # its shape depends on the image
    world.sync()
    left = (world.pid - 1) % world.nprocs
    assert xs.local[:2].tolist() == [1, 2] and xs.local[3] == (8 if world.pid == 0 else 7)
    assert xs.local[-1] == 8
    assert tail.value.tolist() == [0] * (2 + right)


PAST_THE_END = "xs[1, 4] = 1.0    # past the end of rank 1's image"


def put_past_the_end_before_the_shapes_are_known(world):
    xs = world.coarray(4 if world.pid else 10, dtype=np.float64)
    if world.pid == 0:
        xs[1, 4] = 1.0    # past the end of rank 1's image
    world.sync()
    return xs.local.tolist()


def test_a_put_found_out_of_bounds_at_the_sync_fails_the_putting_rank_with_its_call_site():
    require_nprocs(2)
    with pytest.raises(bsp.RemoteError) as caught:
        run_with_timeout(put_past_the_end_before_the_shapes_are_known, (), {}, nprocs=2, timeout=60)
    error = caught.value
    line = open(__file__).read().splitlines().index("        " + PAST_THE_END) + 1
    assert error.rank == 0
    assert "IndexError: index 4 is out of bounds for axis 0 of size 4 (rank 1's image has shape (4,))" \
        in error.remote_traceback
    assert f"in the coarray put at {__file__}:{line} in put_past_the_end_before_the_shapes_are_known" \
        in error.remote_traceback


# -- element puts and gets ----------------------------------------------------------

@spmd(nprocs=[1, 2, 3])
def test_element_puts_keep_put_order_with_slice_and_op_puts(world):
    xs = world.coarray(8, dtype=np.float64)
    world.sync()
    right = (world.pid + 1) % world.nprocs
    xs[right, 1] = 1.0                      # an element put (batched) ...
    xs[right, 0:4] = 2.0                    # ... then a slice put over it ...
    xs.put(3, right, 2)                     # ... then element puts, by method, an int ...
    xs[right, np.int64(-1)] = np.float64(4.5)       # ... numpy scalars, a negative index
    xs.put(10.0, right, 2, op=np.add)       # ... and an op put after an element put
    xs[right, 5] = 1.0
    xs[right, 5] = 6.0                      # a repeated index: the last wins
    world.sync()
    assert xs.local.tolist() == [2, 2, 13, 2, 0, 6, 0, 4.5]


@spmd(nprocs=[1, 2, 3])
def test_element_gets_are_zero_dimensional_arrays_seen_before_the_puts(world):
    xs = world.coarray(np.arange(5, dtype=np.int32) + 10 * world.pid)
    world.sync()
    right = (world.pid + 1) % world.nprocs
    first, last, method = xs[right, 0], xs[right, -1], xs.get(right, 2)
    xs[right, 0] = -1
    world.sync()
    assert first.value == 10 * right and last.value == 10 * right + 4 and method.value == 10 * right + 2
    assert first.value.shape == () and first.value.dtype == np.int32
    assert xs.local[0] == -1


@spmd(nprocs=[2])
def test_many_element_puts_and_gets_in_one_superstep(world):
    n = 5000
    xs = world.coarray(n, dtype=np.float64)
    world.sync()
    other = 1 - world.pid
    for i in range(n):
        xs[other, i] = float(i * (world.pid + 1))
    futures = [xs[other, i] for i in range(0, n, 7)]
    world.sync()
    assert (xs.local == np.arange(n) * (other + 1)).all()
    assert [future.value for future in futures] == [0.0] * len(futures)      # served before the puts
