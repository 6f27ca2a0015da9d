"""Layouts: ("block", sizes) axes (uneven, parts of 0 elements too),
replicated arrays (every axis None) at any nprocs, `counts`, `balance`,
redistribution and halos between any of them, against a serial numpy model
(DESIGN §2.2 "layouts").  Many cases run in one bsp.run, to keep it fast."""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bsp
from array_cases import checked_in_batches, held_window, layouts, model, part_sizes, replicated_layouts
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.arrays.distribution import Axis, layout_of
from bsp.core import wire
from bsp.testing import require_nprocs, spmd



# -- the index arithmetic, serially ---------------------------------------------------

@given(st.data(), st.integers(0, 30), st.integers(1, 6))
def test_every_index_of_a_sized_axis_has_one_owner_and_one_place(data, n, procs):
    sizes = data.draw(part_sizes(n, procs))
    axis = layout_of((n,), [("block", sizes)], (procs,), procs)[0].axes[0]
    held = [axis.indices(coord) for coord in range(procs)]
    assert [len(h) for h in held] == list(sizes) and axis.counts() == sizes
    assert np.concatenate(held).tolist() == list(range(n))
    for coord, indices in enumerate(held):
        assert (axis.owner(indices) == coord).all()
        assert axis.position(indices).tolist() == list(range(len(indices)))
        assert axis.span(coord) == (sum(sizes[:coord]), sum(sizes[:coord + 1]))


@given(st.integers(0, 40), st.integers(1, 5), st.integers(1, 6))
def test_counts_of_cyclic_axes_are_the_lengths_of_their_parts(n, b, procs):
    axis = Axis(n, "cyclic", b, procs)
    assert axis.counts() == tuple(len(axis.indices(coord)) for coord in range(procs))


def test_regular_sizes_are_the_block_layout():
    sized, given = layout_of((7, 3), [("block", [3, 2, 2]), None], None, 3)
    assert sized == layout_of((7, 3), "block", None, 3)[0] and given == (("block", (3, 2, 2)), None)
    assert sized != layout_of((7, 3), [("block", (2, 3, 2)), None], None, 3)[0]
    single, given = layout_of((7, 3), ("block", np.array([0, 7])), None, 2)
    assert given == ("block", (0, 7)) and single.specs == (("block", (0, 7)), None) and single.grid == (2, 1)


@pytest.mark.parametrize("distribution, grid, nprocs, message", [
    ([("block", (2, 2)), None], None, 3, r"part sizes \{0: \('block', \(2, 2\)\)\} take 2 grid coordinates"),
    ([("block", (2, 2)), None], (3, 1), 3, r"gives 2 part sizes, but the grid \(3, 1\) has 3"),
    ([("block", (2, 4)), None], None, 2, r"part sizes \(2, 4\) add up to 6, not to the axis's length 5"),
    ([("block", (6, -1)), None], None, 2, r"part sizes of \('block', \(6, -1\)\) must be non-negative ints"),
    ([("block", (2.5, 2.5)), None], None, 2, r"must be non-negative ints"),
    ([("block", ()), None], None, 2, r"take 0 grid coordinates"),
    (["block", ("block", (1, 1, 1))], None, 4, r"cannot complete to the run.s 4 ranks"),
    ([None, None], (2, 1), 2, r"puts 2 processors on axis 0, whose distribution is None"),
    ([None, "block"], (1, 1), 2, r"grid \(1, 1\) has 1 processors, but the run has 2 ranks"),
])
def test_bad_sizes_and_partly_replicated_grids_are_value_errors_naming_the_values(distribution, grid, nprocs,
                                                                                  message):
    with pytest.raises(ValueError, match=message):
        layout_of((5, 3), distribution, grid, nprocs)


@pytest.mark.parametrize("nprocs", [1, 2, 5])
def test_a_replicated_layout_puts_every_rank_at_the_origin_holding_it_all(nprocs):
    for grid in [None, (1, 1)]:
        layout, given = layout_of((4, 3), (None, None), grid, nprocs)
        assert layout.grid == (1, 1) and layout.replicated and given == (None, None)
        assert all(layout.coords_of(pid) == (0, 0) and layout.local_shape(pid) == (4, 3) for pid in range(nprocs))


def test_grid_none_gives_sized_axes_their_counts_and_the_rest_near_square():
    layout, _ = layout_of((6, 5, 4), [("block", (1, 5)), "cyclic", "block"], None, 12)
    assert layout.grid == (2, 3, 2)


# -- on the ranks ------------------------------------------------------------------------

def check_layout(world, shape, distribution, grid):
    """from_array of the model under one layout: each rank's part, every
    element held exactly once (by every rank when replicated), counts."""
    expected = model(shape)
    d = DistArray.from_array(world, expected, distribution, grid)
    assert np.array_equal(d.local, expected[held_window(d)]) and d.local.flags.c_contiguous
    holders = np.zeros(shape, np.int64)
    for indices in world.allgather(tuple(d.index(axis) for axis in range(d.ndim))):
        holders[np.ix_(*indices)] += 1
    assert (holders == (world.nprocs if d.layout.replicated else 1)).all()
    for axis in range(d.ndim):
        counts = d.counts(axis)
        assert len(counts) == d.grid[axis] and sum(counts) == shape[axis]
        assert counts[d.coords[axis]] == d.local.shape[axis]
    assert np.array_equal(d.allgather(), expected)
    return d


def check_balance(world, d):
    expected = model(d.shape)
    b = d.balance()
    assert b.grid == d.grid and all(spec in (None, "block") for spec in b.layout.specs)
    for axis in range(d.ndim):
        n, procs = d.shape[axis], d.grid[axis]
        assert b.counts(axis) == tuple(n // procs + (c < n % procs) for c in range(procs))
    assert np.array_equal(b.local, expected[held_window(b)])
    assert b.local is not d.local


def check_halo(world, d, width, periodic):
    """The halo of d with its split axes made block (keeping given sizes)
    against np.pad of the model."""
    specs = [spec if spec is None or spec == "block" or spec[0] == "block" else "block" for spec in d.layout.specs]
    block = d.redistribute(tuple(specs), d.grid)
    widths = [min(width, n) if spec is not None else 0 for spec, n in zip(specs, d.shape)]
    padded = np.pad(model(d.shape), [(w, w) for w in widths], **({"mode": "wrap"} if periodic else
                                                                  {"constant_values": -1.0}))
    starts = [block.layout.axes[axis].span(block.coords[axis])[0] for axis in range(d.ndim)]
    window = tuple(slice(s, s + n + 2 * w) for s, n, w in zip(starts, block.local.shape, widths))
    got = block.halo(widths, periodic=periodic, fill=-1.0)
    assert np.array_equal(got, padded[window]), (d.shape, specs, d.grid, widths, periodic)


def run_cases(world, cases):
    for first, second, halo in cases:
        d = check_layout(world, *first)
        check_balance(world, d)
        e = d.redistribute(*second[1:])
        assert np.array_equal(e.local, model(d.shape)[held_window(e)])
        back = e.redistribute(d.distribution, d.grid)
        assert back.layout == d.layout and np.array_equal(back.local, d.local)
        if halo is not None and 0 not in d.shape:
            check_halo(world, d, *halo)


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(3, 6))):
        first = draw(st.one_of(layouts(nprocs), replicated_layouts()))
        second = draw(st.one_of(layouts(nprocs, shape=first[0]), replicated_layouts(shape=first[0])))
        halo = (draw(st.integers(0, 3)), draw(st.booleans())) if draw(st.booleans()) else None
        cases.append((first, second, halo))
    return cases


test_random_layouts_uneven_and_replicated_hold_redistribute_balance_and_halo = checked_in_batches(batches, run_cases)


@spmd(nprocs=[3])
def test_halo_reaches_past_parts_of_zero_elements_and_parts_narrower_than_it(world):
    shape = (7, 4)
    for sizes in [(0, 7, 0), (1, 0, 6), (3, 1, 3), (7, 0, 0)]:
        d = DistArray.from_array(world, model(shape), distribution=(("block", sizes), None))
        for width, periodic in [(1, False), (2, True), (3, False), (7, True)]:
            check_halo(world, d, width, periodic)


@spmd(nprocs=[1, 2, 3])
def test_a_replicated_array_is_whole_on_every_rank_at_any_nprocs(world):
    a = model((3, 4))
    d = DistArray.from_array(world, a, (None, None))
    assert d.grid == (1, 1) and d.coords == (0, 0) and np.array_equal(d.local, a)
    assert d.counts(0) == (3,) and d.counts(1) == (4,)
    split = d.redistribute(("cyclic", None))
    assert np.array_equal(split.allgather(), a)
    again = split.redistribute((None, None))
    assert np.array_equal(again.local, a)
    assert np.array_equal(DistArray.from_root(world, a if world.pid == 0 else None, 0, (None, None)).local, a)


@spmd(nprocs=[1, 2, 3])
def test_reductions_of_a_replicated_array_count_each_element_once(world):
    a = model((3, 4))
    d = DistArray.from_array(world, a, (None, None))
    assert (d + 1).sum() == (a + 1).sum() and d.max() == a.max() and d.mean() == a.mean()


# -- what travels --------------------------------------------------------------------------

def move(world, shape, before, after):
    d = DistArray.zeros(world, shape, np.float32, distribution=before)
    world.sync()
    d.redistribute(after)
    world.sync()
    d.balance()


def bytes_of(shape):
    data, buffers = wire.dumps(np.empty(shape, np.float32))
    return len(data) + sum(buffer.nbytes for buffer in buffers)


@pytest.mark.parametrize("nprocs", [2, 3])
def test_from_replicated_nothing_travels_and_to_replicated_every_rank_gets_the_rest(nprocs):
    require_nprocs(nprocs)
    shape = (10, 3)
    profiles = []
    bsp.run(move, shape, (None, None), ("cyclic", None), nprocs=nprocs, profile=profiles.append)
    bsp.run(move, shape, (("block", (10,) + (0,) * (nprocs - 1)), None), (None, None), nprocs=nprocs,
            profile=profiles.append)
    from_replicated, to_replicated = profiles
    step = list(from_replicated.kinds).index(superstep_kinds.REDISTRIBUTE)
    assert from_replicated.bytes_sent[:, step].tolist() == [0] * nprocs
    assert superstep_kinds.BALANCE not in list(from_replicated.kinds)      # balanced already: a local copy
    step = list(to_replicated.kinds).index(superstep_kinds.REDISTRIBUTE)
    assert to_replicated.bytes_sent[:, step].tolist() == [(nprocs - 1) * bytes_of(shape)] + [0] * (nprocs - 1)
    assert to_replicated.bytes_received[:, step].tolist() == [0] + [bytes_of(shape)] * (nprocs - 1)


def test_balance_is_one_superstep_moving_only_what_changes_owner():
    require_nprocs(3)
    shape = (9, 2)
    profiles = []
    bsp.run(move, shape, (("block", (0, 3, 6)), None), (("block", (0, 3, 6)), None), nprocs=3,
            profile=profiles.append)
    [profile] = profiles
    kinds = list(profile.kinds)
    assert kinds.count(superstep_kinds.BALANCE) == 1
    step = kinds.index(superstep_kinds.BALANCE)
    # (0, 3, 6) -> (3, 3, 3): rank 1's rows 0..2 go to rank 0, rank 2's rows 3..5 to rank 1
    assert profile.bytes_sent[:, step].tolist() == [0, bytes_of((3, 2)), bytes_of((3, 2))]
    assert profile.bytes_received[:, step].tolist() == [bytes_of((3, 2)), bytes_of((3, 2)), 0]


# -- defects (issue 25) --------------------------------------------------------------------

@spmd(nprocs=[1, 2])
def test_a_shape_that_is_not_ints_is_a_type_error_everywhere_a_shape_is_taken(world):
    makers = [lambda s: DistArray.zeros(world, s), lambda s: DistArray.empty(world, s),
              lambda s: DistArray.ones(world, s), lambda s: DistArray.full(world, s, 1.0),
              lambda s: DistArray.from_function(world, s, lambda *i: 0.0, distribution=("block",)),
              lambda s: DistArray(world, s, np.zeros(0))]
    for make in makers:
        with pytest.raises(TypeError, match=r"shape must be an int or a sequence of ints, not str"):
            make("(2, 3,)")
        with pytest.raises(TypeError, match=r"shape must be an int or a sequence of ints"):
            make((2.0, 3))
        with pytest.raises(TypeError):
            make((True,))
        with pytest.raises(ValueError, match="negative dimensions are not allowed"):
            make((2, -1))
    assert DistArray.zeros(world, np.array([3, 2])).shape == (3, 2)
    assert DistArray.zeros(world, np.int64(3)).shape == (3,)


@spmd(nprocs=[1, 2])
def test_a_grid_shape_given_as_a_string_is_a_type_error(world):
    for shape in ["22", "2", b"\x02"]:
        with pytest.raises(TypeError, match="a grid shape must be a tuple of positive integers, not b?'"):
            world.grid(shape)


@spmd(nprocs=[1, 2, 3])
def test_assigning_a_local_part_checks_its_shape_and_kind_and_keeps_the_dtype(world):
    d = DistArray.zeros(world, (5, 2), dtype=np.float64, distribution=(("block", (5,) + (0,) * (world.nprocs - 1)),
                                                                       None))
    part = d.local.shape
    with pytest.raises(ValueError, match=rf"its part has shape {re_shape(part)}, not \(6, 2\)"):
        d.local = np.zeros((6, 2))
    with pytest.raises(TypeError, match="cannot assign a part of dtype int64 .* of dtype float64"):
        d.local = np.zeros(part, np.int64)
    with pytest.raises(TypeError, match="of dtype complex128"):
        d.local = np.zeros(part, np.complex128)
    new = np.full(part, 1.5, np.float32)
    d.local = new
    assert d.dtype == np.float64 and d.local.dtype == np.float64 and np.array_equal(d.local, new)
    same = np.full(part, 2.5)
    d.local = same
    assert d.local is same                              # of the dtype already: taken as it is
    d.local[...] = 7                                    # writing into it: numpy's casting
    assert (d.allgather() == 7.0).all() and d.dtype == np.float64
    assert {str(dtype) for dtype in world.allgather(d.dtype)} == {"float64"}


def re_shape(shape):
    return str(shape).replace("(", r"\(").replace(")", r"\)")


@spmd(nprocs=[2])
def test_counts_take_numpy_axes(world):
    d = DistArray.zeros(world, (4, 3), distribution=("cyclic", None))
    assert d.counts(-2) == (2, 2) and d.counts(1) == (3,)
    with pytest.raises(ValueError, match="axis 2 is out of bounds for array of dimension 2"):
        d.counts(2)
    with pytest.raises(IndexError):
        d.counts(-3)
    with pytest.raises(TypeError):
        d.counts(1.0)
