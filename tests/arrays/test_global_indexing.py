"""`d[key]` and `d[key] = value` with global indices against numpy on the
model array: random shapes (empty axes too), layouts and grids, nprocs 1-4,
random keys of every kind (ints, slices with negative steps, None,
Ellipsis, integer arrays, boolean masks, DistArray masks), values of
every kind, and numpy's exceptions.  Many cases run in one bsp.run."""


import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import bsp
from bsp import DistArray
from array_cases import NPROCS, PROPERTIES, checked_in_batches, held_window, layouts, model
from bsp.testing import require_nprocs, spmd



@st.composite
def basic_items(draw, shape):
    """One item per axis (some left off), with None and Ellipsis mixed in;
    now and then an index out of range or one index too many."""
    items = []
    for n in shape[:draw(st.integers(0, len(shape)))]:
        bound = max(n, 1) + 1
        if n and draw(st.booleans()):
            items.append(draw(st.integers(-n, n - 1)))
        else:
            ends = st.one_of(st.none(), st.integers(-bound, bound))
            items.append(slice(draw(ends), draw(ends), draw(st.sampled_from([None, 1, 2, 3, -1, -2]))))
    for _ in range(draw(st.integers(0, 2))):
        items.insert(draw(st.integers(0, len(items))), None)
    if draw(st.booleans()):
        items.insert(draw(st.integers(0, len(items))), Ellipsis)
    trouble = draw(st.integers(0, 9))
    if trouble == 0:
        items.append(0)                                      # maybe one too many, maybe fine
    elif trouble == 1 and shape:
        items = [shape[0] + draw(st.integers(0, 2))] + items[1:]      # out of range
    return tuple(items) if draw(st.integers(0, 4)) else (items[0] if len(items) == 1 else tuple(items))


@st.composite
def advanced_items(draw, shape):
    """Integer arrays (negatives, repeats, broadcast together, separated by
    a slice), lists, boolean masks of some leading axes."""
    kind = draw(st.integers(0, 3))
    if kind == 0 or not shape:
        mask_axes = draw(st.integers(1, len(shape))) if shape else 1
        mask = np.asarray(draw(st.lists(st.booleans(), min_size=int(np.prod(shape[:mask_axes])),
                                        max_size=int(np.prod(shape[:mask_axes])))), bool).reshape(shape[:mask_axes])
        return mask if draw(st.booleans()) else (mask, Ellipsis)
    items = []
    for n in shape:
        choice = draw(st.integers(0, 2))
        if choice == 0 and n:
            length = draw(st.integers(0, 4))
            values = draw(st.lists(st.integers(-n, n - 1), min_size=length, max_size=length))
            items.append(values if draw(st.booleans()) else np.asarray(values, np.int64).reshape(-1))
        elif choice == 1 and n:
            items.append(np.asarray(draw(st.lists(st.integers(-n, n - 1), min_size=2, max_size=2))).reshape(2, 1))
        else:
            items.append(slice(None, None, draw(st.sampled_from([1, -1, 2]))))
    if kind == 3 and shape and shape[0]:
        items[0] = [shape[0]]                                # out of range
    return tuple(items)


def outcome(call):
    try:
        return "ok", call()
    except Exception as error:                              # numpy's exception types are the answer
        return "raised", type(error)


def gathered(result):
    return result.allgather() if isinstance(result, DistArray) else result


def check_get(d, expected, key):
    want = outcome(lambda: expected[key])
    if want[0] == "ok" and np.ndim(want[1]) == 0:
        want = ("ok", want[1][()])                          # DESIGN: a 0-d result is a numpy scalar
    got = outcome(lambda: gathered(d[key]))
    assert got[0] == want[0], (d.shape, d.distribution, d.grid, key, got, want)
    if want[0] == "raised":
        assert issubclass(got[1], want[1]) or got[1] is want[1], (key, got, want)
        return
    assert type(got[1]) is type(want[1]) and np.shape(got[1]) == np.shape(want[1]), (key, got, want)
    assert np.array_equal(got[1], want[1]) and np.asarray(got[1]).dtype == np.asarray(want[1]).dtype, (key,)


def check_set(world, d, expected, key, how):
    target = expected.copy()
    selected = outcome(lambda: target[key])
    if selected[0] == "raised":
        assert outcome(lambda: d.__setitem__(key, 1))[1] is selected[1], key
        return
    shape = np.shape(selected[1])
    values = np.arange(np.prod(shape), dtype=np.float64).reshape(shape) * 3 - 5
    if how == "scalar" or not shape:
        value, numpy_value = 2.5, 2.5
    elif how == "row":                                      # broadcasts along the leading axes
        value = numpy_value = np.arange(shape[-1], dtype=np.float64) - 2
    elif how == "wrong":
        value = numpy_value = np.zeros(shape[-1] + 1)
    else:
        numpy_value = values
        value = DistArray.from_function(world, shape, lambda *i: values[i], distribution=("cyclic",) + (None,) * (len(shape) - 1)) \
            if world.nprocs == 1 or shape[0] else values
    want = outcome(lambda: target.__setitem__(key, numpy_value))
    got = outcome(lambda: d.__setitem__(key, value))
    assert got[0] == want[0] and (want[0] == "ok" or got[1] is want[1]), (key, how, got, want)
    assert np.array_equal(d.allgather(), target), (d.shape, d.distribution, d.grid, key, how)


def run_cases(world, cases):
    for (shape, distribution, grid), keys in cases:
        expected = model(shape)
        d = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution, grid=grid)
        for key, how in keys:
            check_get(d, expected, key)
            fresh = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution, grid=grid)
            check_set(world, fresh, expected.copy(), key, how)


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(2, 4))):
        shape, distribution, grid = draw(layouts(nprocs))
        keys = [(draw(st.one_of(basic_items(shape), advanced_items(shape))),
                 draw(st.sampled_from(["scalar", "array", "row", "wrong"]))) for _ in range(draw(st.integers(2, 6)))]
        cases.append(((shape, distribution, grid), keys))
    return cases


test_random_keys_read_and_write_as_numpy = checked_in_batches(batches, run_cases)


def mask_cases(world, cases):
    for (shape, distribution, grid), (_, mask_distribution, mask_grid), seed in cases:
        expected = model(shape)
        chosen = (np.arange(expected.size).reshape(shape) * (seed + 7)) % 5 < 2
        d = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution, grid=grid)
        mask = DistArray.from_function(world, shape, lambda *i: chosen[i], dtype=bool, distribution=mask_distribution,
                                       grid=mask_grid)
        picked = d[mask]
        assert picked.ndim == 1 and np.array_equal(picked.allgather(), expected[chosen])
        assert sum(picked.counts(0)) == chosen.sum()
        target = expected.copy()
        target[chosen] = -1.0
        d[mask] = -1.0
        assert np.array_equal(d.allgather(), target)
        target[chosen] = np.arange(chosen.sum())
        d[mask] = np.arange(chosen.sum())
        assert np.array_equal(d.allgather(), target)
        values = DistArray.from_function(world, int(chosen.sum()), lambda i: i * 2.0, distribution=("cyclic",))
        target[chosen] = np.arange(chosen.sum()) * 2.0
        d[mask] = values
        assert np.array_equal(d.allgather(), target)
        with pytest.raises(ValueError, match="could not broadcast"):
            d[mask] = np.zeros(int(chosen.sum()) + 2)


@pytest.mark.parametrize("nprocs", NPROCS)
@PROPERTIES
@given(data=st.data())
def test_distarray_masks_select_and_write_in_c_order(nprocs, data):
    require_nprocs(nprocs)
    cases = []
    for _ in range(data.draw(st.integers(2, 4))):
        first = data.draw(layouts(nprocs))
        second = data.draw(layouts(nprocs, shape=first[0])) if data.draw(st.booleans()) else first
        cases.append((first, second, data.draw(st.integers(0, 5))))
    bsp.run(mask_cases, cases, nprocs=nprocs)


@spmd(nprocs=[1, 2, 3, 4])
def test_basic_slices_of_block_axes_move_nothing(world):
    shape = (9, 7, 4)
    expected = model(shape)
    for distribution in [("block", "block", None), ("block", None, "block"), (None, ("block", (2, 0, 5)), None)]:
        if isinstance(distribution[1], tuple) and world.nprocs != 3:
            continue                                        # three part sizes: three ranks
        d = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution)
        for key, picks, kept in [((slice(1, 8, 2), slice(None), 1), (np.arange(1, 8, 2), np.arange(7), 1), {0: 0, 1: 1}),
                                 ((slice(None), 5, slice(None, None, 3)), (np.arange(9), 5, np.arange(0, 4, 3)), {0: 0, 2: 1}),
                                 ((2, None, slice(2, None)), (2, np.arange(2, 7), np.arange(4)), {1: 1, 2: 2})]:
            e = d[key]
            assert np.array_equal(e.allgather(), expected[key])
            assert np.array_equal(e.local, expected[key][held_window(e)])
            # every element this rank has, it held before: nothing moved
            sources = {axis: picks[axis][e.index(j)] for axis, j in kept.items()}
            if e.local.size:
                for axis, wanted in sources.items():
                    assert np.isin(wanted, d.index(axis)).all(), (distribution, key, axis)


@spmd(nprocs=[1, 2, 3])
def test_a_single_element_is_a_numpy_scalar_everywhere(world):
    expected = model((5, 4), np.int32)
    d = DistArray.from_function(world, (5, 4), lambda i, j: expected[i, j], dtype=np.int32,
                                distribution=("cyclic", "block") if world.nprocs != 3 else ("block", None))
    for key in [(4, 3), (-1, 0), (np.int64(2), -4), (np.array(1), 2)]:
        got = d[key]
        assert type(got) is np.int32 and got == expected[key]
    b = DistArray.from_function(world, 3, lambda i: i % 2 == 0, dtype=bool)
    assert type(b[0]) is np.bool_ and b[0] and not b[1]
    for key, error, message in [((5, 0), IndexError, r"index 5 is out of bounds for axis 0 with size 5"),
                                ((0, 0, 0), IndexError, r"too many indices for array: array is 2-dimensional"),
                                (1.5, IndexError, r"only integers, slices"),
                                (([0, 1], [0, 1, 2]), IndexError, r"shape mismatch")]:
        with pytest.raises(error, match=message):
            d[key]
    with pytest.raises(IndexError, match="boolean index did not match"):
        d[DistArray.zeros(world, (4, 4), dtype=bool)]
    with pytest.raises(ValueError, match=r"could not broadcast input array from shape \(3,\) into shape \(5,\)"):
        d[:, 1] = np.zeros(3)
    with pytest.raises(ValueError, match="could not broadcast"):
        d[:, 1] = DistArray.zeros(world, 3)


@spmd(nprocs=[2, 3])
def test_repeated_indices_the_last_wins(world):
    d = DistArray.zeros(world, (6,), dtype=np.int64, distribution="cyclic")
    d[[1, 4, 1, 1, 4]] = np.array([10, 20, 30, 40, 50])
    assert d.allgather().tolist() == [0, 40, 0, 0, 50, 0]
    values = DistArray.from_function(world, 5, lambda i: i * 100, dtype=np.int64, distribution="block")
    d[[2, 2, 5, 2, 5]] = values
    assert d.allgather().tolist() == [0, 40, 300, 0, 50, 400]
