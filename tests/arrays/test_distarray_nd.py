"""n-dimensional DistArrays over processor grids, against a serial numpy
model: every distribution x grid x shape (hypothesis draws them, shapes that
do not divide and empty local parts included), round trips, each index held
once, redistribution between random pairs, the halo against np.pad, and
the bytes each rank sends and receives.  Many cases run in one bsp.run, to
keep the suite short."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bsp
from array_cases import checked_in_batches, factored
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.core import wire
from bsp.arrays.distribution import Axis, layout_of
from bsp.testing import require_nprocs, spmd

SPECS = st.one_of(st.none(), st.sampled_from(["block", "cyclic"]),
                  st.tuples(st.just("block-cyclic"), st.integers(1, 3)))


def model(shape, seed=0):
    """The serial global array: distinct values, so misplacements show."""
    return np.arange(math.prod(shape), dtype=np.float64).reshape(shape) * 1.25 + seed


def grids(specs, nprocs):
    """None, or an explicit grid: nprocs factored over the split axes in a
    random order (so 1 x p and p x 1 both come up)."""
    return st.one_of(st.none(), factored(tuple(specs), nprocs))


@st.composite
def layouts(draw, nprocs, shape=None, block_only=False):
    """(shape, distribution, grid) that nprocs ranks can hold."""
    if shape is None:
        shape = tuple(draw(st.lists(st.integers(0, 7), min_size=1, max_size=3)))
    spec = st.sampled_from([None, "block"]) if block_only else SPECS
    specs = list(draw(st.lists(spec, min_size=len(shape), max_size=len(shape))))
    if nprocs > 1 and all(s is None for s in specs):
        specs[draw(st.integers(0, len(shape) - 1))] = "block"
    return shape, tuple(specs), draw(grids(specs, nprocs))


# -- the index arithmetic, serially ---------------------------------------------

@given(st.integers(0, 40), st.sampled_from(["block", "cyclic"]), st.integers(1, 5), st.integers(1, 7))
def test_every_index_of_an_axis_has_one_owner_and_one_place(n, kind, b, procs):
    axis = Axis(n, kind, b if kind == "cyclic" else 1, procs)
    held = [axis.indices(coord) for coord in range(procs)]
    assert sorted(np.concatenate(held).tolist()) == list(range(n))
    for coord, indices in enumerate(held):
        assert indices.dtype == np.int64 and (np.diff(indices) > 0).all()
        assert (axis.owner(indices) == coord).all()
        assert axis.position(indices).tolist() == list(range(len(indices)))


def test_grid_none_splits_near_square_over_the_split_axes_only():
    layout, given = layout_of((10, 3, 10), ("block", None, "cyclic"), None, 6)
    assert layout.grid == (3, 1, 2) and given == ("block", None, "cyclic")
    layout, given = layout_of((10, 3), "cyclic", None, 6)
    assert layout.grid == (6, 1) and given == "cyclic" and layout.specs == ("cyclic", None)


# -- on the ranks -----------------------------------------------------------------

def check_layout(world, shape, distribution, grid):
    """from_function, from_root, gather, allgather and index() of one
    layout against the model; every global element held exactly once."""
    expected = model(shape)
    d = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution, grid=grid)
    held = tuple(d.index(axis) for axis in range(len(shape)))
    assert all(h.dtype == np.int64 for h in held) and np.array_equal(d.rows, held[0])
    assert d.local.shape == tuple(map(len, held)) and np.array_equal(d.local, expected[np.ix_(*held)])
    counts = np.zeros(shape, np.int64)
    for indices in world.allgather(held):
        counts[np.ix_(*indices)] += 1
    assert (counts == 1).all()
    assert np.array_equal(d.allgather(), expected)
    root = world.nprocs - 1
    gathered = d.gather(root)
    assert np.array_equal(gathered, expected) if world.pid == root else gathered is None
    scattered = DistArray.from_root(world, expected if world.pid == root else None, root, distribution, grid)
    assert scattered.grid == d.grid and np.array_equal(scattered.local, d.local)
    return d


def check_redistribution(world, d, distribution, grid):
    """d under another layout holds the model's elements, and comes back."""
    expected = model(d.shape)
    e = d.redistribute(distribution, grid)
    assert e.shape == d.shape and e.dtype == d.dtype
    assert np.array_equal(e.local, expected[np.ix_(*(e.index(a) for a in range(d.ndim)))])
    back = e.redistribute(d.distribution, d.grid)
    assert back.layout == d.layout and np.array_equal(back.local, d.local)


def serial_halo(array, widths, periodic):
    pads = [(w, w) for w in widths]
    return np.pad(array, pads, mode="wrap") if periodic else np.pad(array, pads, constant_values=-1.0)


def check_halo(world, d, width, periodic):
    """The halo against the model padded serially (np.pad)."""
    split = d.layout.split_axes()
    widths = [width if axis in split else 0 for axis in range(d.ndim)]
    expected = model(d.shape)
    padded = serial_halo(expected, widths, periodic)
    window = []
    for axis, w in enumerate(widths):
        held = d.index(axis)
        start = held[0] if len(held) else d.layout.axes[axis].span(d.coords[axis])[0]
        window.append(slice(start, start + len(held) + 2 * w))
    got = d.halo(width, periodic=periodic, fill=-1.0)
    assert np.array_equal(got, padded[tuple(window)]), (d.shape, d.distribution, d.grid, width, periodic)


def run_cases(world, cases):
    for (shape, distribution, grid), (_, other, other_grid), halo in cases:
        d = check_layout(world, shape, distribution, grid)
        check_redistribution(world, d, other, other_grid)
        if d.ndim == 2:
            t = d.transpose()
            assert t.layout.specs == d.layout.specs and t.grid == d.grid
            assert np.array_equal(t.allgather(), model(shape).T)
        if halo is not None:
            block = d.redistribute(tuple("block" if s is not None else None for s in d.layout.specs), d.grid)
            check_halo(world, block, *halo)


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(3, 6))):
        first = draw(layouts(nprocs))
        second = draw(layouts(nprocs, shape=first[0]))
        halo = None
        if draw(st.booleans()):
            most = min(n for n in first[0])
            halo = (draw(st.integers(0, min(most, 3))), draw(st.booleans()))
        cases.append((first, second, halo))
    return cases


test_random_layouts_round_trips_redistributions_and_halos = checked_in_batches(batches, run_cases)


@spmd(nprocs=[4])
def test_one_by_p_and_p_by_one_grids_with_empty_parts(world):
    for grid in [(1, 4), (4, 1), (2, 2)]:
        for shape in [(3, 2), (2, 3), (9, 7), (0, 5)]:
            for distribution in [("block", "block"), ("cyclic", ("block-cyclic", 2))]:
                d = check_layout(world, shape, distribution, grid)
                check_redistribution(world, d, ("cyclic", "cyclic"), grid[::-1])
                if 0 not in shape:
                    check_halo(world, d.redistribute(("block", "block"), grid), 1, True)


@spmd(nprocs=[1, 2, 4])
def test_halo_widths_per_axis_corners_and_fill(world):
    shape = (6, 5, 3)
    d = DistArray.from_function(world, shape, lambda i, j, k: model(shape)[i, j, k], distribution=("block", "block", None))
    for widths in [(1, 2, 0), (0, 1, 0), (2, 0, 0), (6, 5, 0)]:
        for periodic in (False, True):
            got = d.halo(widths, periodic=periodic, fill=-1.0)
            padded = serial_halo(model(shape), widths, periodic)
            starts = [d.layout.axes[a].span(d.coords[a])[0] for a in range(3)]
            window = tuple(slice(s, s + n + 2 * w) for s, n, w in zip(starts, d.local.shape, widths))
            assert np.array_equal(got, padded[window]), (widths, periodic)


@spmd(nprocs=[2, 3])
def test_from_function_broadcasts_and_one_dimensional_calls_keep_their_convention(world):
    d = DistArray.from_function(world, (5, 4), lambda i, j: i * 10, dtype=np.int64, distribution=("cyclic", None))
    assert np.array_equal(d.local, np.repeat(d.rows[:, None] * 10, 4, axis=1))
    rows_only = DistArray.from_function(world, (5, 4), lambda rows: np.outer(rows * 10, np.ones(4)), distribution="cyclic")
    assert np.array_equal(rows_only.local, d.local) and rows_only.distribution == "cyclic"
    cyclic_blocks = DistArray.from_function(world, 11, lambda rows: rows * 1.0, distribution=("block-cyclic", 2))
    assert cyclic_blocks.grid == (world.nprocs,) and np.array_equal(cyclic_blocks.allgather(), np.arange(11.0))


@spmd(nprocs=[4])
def test_a_world_grid_is_a_distarray_grid_with_the_same_coordinates(world):
    grid = world.grid((2, 2))
    d = DistArray.zeros(world, (5, 6), distribution=("cyclic", "block"), grid=grid)
    assert d.grid == grid.shape and d.coords == grid.coords


@spmd(nprocs=[1, 2, 4])
def test_a_boolean_mask_of_rows_writes_into_the_local_part(world):
    u = DistArray.zeros(world, (8, 3))
    u.local[u.rows == 0] = 1.0
    u.local[u.index(0) % 2 == 1, 1] = 2.0
    expected = np.zeros((8, 3))
    expected[0] = 1.0
    expected[1::2, 1] = 2.0
    assert np.array_equal(u.allgather(), expected)


@spmd(nprocs=[1, 3, 4])
def test_ufuncs_and_reductions_on_a_grid(world):
    shape = (7, 6)
    a, b = model(shape), np.sin(model(shape))
    layout = dict(distribution=(("block-cyclic", 2), "cyclic"))
    da = DistArray.from_function(world, shape, lambda i, j: a[i, j], **layout)
    db = DistArray.from_function(world, shape, lambda i, j: b[i, j], **layout)
    for got, want in [(da + db, a + b), (np.maximum(da, db) * 2, np.maximum(a, b) * 2), (da > 3, a > 3)]:
        assert got.layout == da.layout and np.array_equal(got.allgather(), want)
    assert np.isclose(da.sum(), a.sum()) and np.isclose(da.mean(), a.mean())
    assert da.min() == a.min() and db.max() == b.max()
    x = DistArray.from_function(world, 9, lambda i: np.cos(i), distribution=(("block-cyclic", 2),))
    assert np.isclose(x.dot(x), np.cos(np.arange(9)) @ np.cos(np.arange(9)))
    mixed = da + db.redistribute(("block", "cyclic"), da.grid)     # moves to da's layout (DESIGN.md §2.2)
    assert mixed.layout == da.layout and np.array_equal(mixed.allgather(), a + b)


# -- what travels ---------------------------------------------------------------

def redistribute_once(world, shape, before, after, dtype):
    d = DistArray.zeros(world, shape, dtype, *before)
    world.sync()
    d.redistribute(*after)


def expected_traffic(shape, before, after, dtype, nprocs):
    """Per rank, the bytes a redistribution must send and receive: for each
    other rank, one array of the elements that move between the two."""
    old, _ = layout_of(shape, *before, nprocs)
    new, _ = layout_of(shape, *after, nprocs)
    sent, received = [0] * nprocs, [0] * nprocs
    for source in range(nprocs):
        for dest in range(nprocs):
            counts = [len(np.intersect1d(a, b)) for a, b in zip(old.indices(source), new.indices(dest))]
            if source != dest and math.prod(counts):
                data, buffers = wire.dumps(np.empty(counts, dtype))
                nbytes = len(data) + sum(buffer.nbytes for buffer in buffers)
                sent[source] += nbytes
                received[dest] += nbytes
    return sent, received


@pytest.mark.parametrize("nprocs, before, after", [
    (4, (("block", "block"), None), (("cyclic", "cyclic"), None)),
    (2, (("block", "block"), None), (("cyclic", "cyclic"), None)),
    (3, (("block", None), None), ((None, "block"), None)),
    (4, (("block", "block"), (1, 4)), ((("block-cyclic", 3), "cyclic"), (4, 1))),
    (4, (("block", "block"), None), (("block", "block"), None)),
])
def test_redistribute_sends_only_what_changes_owner(nprocs, before, after):
    require_nprocs(nprocs)
    shape, dtype = (37, 22), np.float32
    profiles = []
    bsp.run(redistribute_once, shape, before, after, dtype, nprocs=nprocs, profile=profiles.append)
    [profile] = profiles
    step = list(profile.kinds).index(superstep_kinds.REDISTRIBUTE)
    sent, received = expected_traffic(shape, before, after, dtype, nprocs)
    assert profile.bytes_sent[:, step].tolist() == sent
    assert profile.bytes_received[:, step].tolist() == received
    if before == after:
        assert sent == [0] * nprocs


def mismatched(world):
    d = DistArray.zeros(world, (4, 4), distribution=("block", "block"))
    if world.pid == 0:
        d.transpose()
    else:
        d.redistribute(("cyclic", "block"))


def test_transpose_against_redistribute_is_a_mismatch():
    require_nprocs(2)
    with pytest.raises(bsp.SyncMismatchError, match=r"rank 0: transpose at .*test_distarray_nd.py:\d+ in mismatched\n"
                                                r"  rank 1: redistribute at "):
        bsp.run(mismatched, nprocs=2)
