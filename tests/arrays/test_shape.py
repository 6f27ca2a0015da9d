"""Shape operations on DistArrays against numpy on the model array: random
shapes (empty axes too), layouts, grids and nprocs 1-4; reshape, ravel,
flatten, transpose, .T, swapaxes, moveaxis, squeeze, expand_dims,
concatenate and stack, numpy's functions and the methods alike, with
numpy's exceptions.  Many cases run in one bsp.run."""

import math

import numpy as np
import pytest
from hypothesis import strategies as st

import bsp
from bsp import DistArray
from bsp.arrays import superstep_kinds
from array_cases import checked_in_batches, layouts, model
from bsp.testing import require_nprocs, spmd



def outcome(call):
    try:
        result = call()
    except Exception as error:                              # numpy's exception types are the answer
        return "raised", type(error)
    if isinstance(result, DistArray):
        return "ok", result.allgather()
    return "ok", result[()] if isinstance(result, np.ndarray) and result.ndim == 0 else result


def same(d, expected, operation):
    got, want = outcome(lambda: operation(d)), outcome(lambda: operation(expected))
    assert got[0] == want[0], (d.shape, d.distribution, d.grid, got, want)
    if want[0] == "raised":
        assert got[1] is want[1], (got, want)
    else:
        assert type(got[1]) is type(want[1]) and np.shape(got[1]) == np.shape(want[1]), (got, want)
        assert np.array_equal(got[1], want[1]) and np.asarray(got[1]).dtype == np.asarray(want[1]).dtype


def shape_operations(draw, shape):
    """Random shape operations (some of them errors) for an array of `shape`."""
    ndim, size = len(shape), math.prod(shape)
    axis = st.integers(-ndim - 1, ndim)
    divisors = [n for n in range(1, size + 1) if size % n == 0] or [0, 1]
    first = draw(st.sampled_from(divisors))
    new_shape = draw(st.sampled_from([(first, -1), (-1,), (size,), (first, -1, 1), (size + 1,), (-1, -1)]))
    perm = tuple(draw(st.permutations(range(ndim))))
    one, two = draw(axis), draw(axis)
    squeezed = draw(st.one_of(st.none(), axis, st.tuples(axis)))
    expanded = draw(st.one_of(axis, st.tuples(axis, axis)))
    return [
        lambda a: np.reshape(a, new_shape),
        lambda a: a.reshape(*new_shape) if isinstance(a, DistArray) else a.reshape(new_shape),
        lambda a: np.ravel(a), lambda a: a.flatten(), lambda a: a.ravel(),
        lambda a: np.transpose(a), lambda a: a.T, lambda a: np.transpose(a, perm), lambda a: a.transpose(*perm),
        lambda a: np.transpose(a, perm[:-1]),
        lambda a: np.swapaxes(a, one, two), lambda a: a.swapaxes(one, two),
        lambda a: np.moveaxis(a, one, two), lambda a: np.moveaxis(a, (0, one), (two, -1)),
        lambda a: np.squeeze(a, squeezed), lambda a: a.squeeze(), lambda a: np.squeeze(a[..., :1, None], -1),
        lambda a: np.expand_dims(a, expanded),
    ]


def run_cases(world, cases):
    for (shape, distribution, grid), (other, other_distribution, other_grid), operations, axis in cases:
        expected = model(shape)
        d = DistArray.from_function(world, shape, lambda *i: expected[i], distribution=distribution, grid=grid)
        for operation in operations:
            same(d, expected, operation)
        second = model(other, np.int32, seed=3)
        e = DistArray.from_function(world, other, lambda *i: second[i], dtype=np.int32,
                                    distribution=other_distribution, grid=other_grid)
        for operation in [lambda a, b: np.concatenate([a, b, a], axis=axis),
                          lambda a, b: np.concatenate((b, a), axis=None),
                          lambda a, b: np.stack([a, b], axis=axis)]:
            got = outcome(lambda: operation(d, e))
            want = outcome(lambda: operation(expected, second))
            assert got[0] == want[0] and (got[0] == "ok" or got[1] is want[1]), (shape, other, axis, got, want)
            if got[0] == "ok":
                assert np.array_equal(got[1], want[1]) and got[1].dtype == want[1].dtype
        mixed = outcome(lambda: np.concatenate([d, second[:, ...] if second.ndim else second], axis=axis))
        want = outcome(lambda: np.concatenate([expected, second], axis=axis))
        assert mixed[0] == want[0] and (mixed[0] == "raised" or np.array_equal(mixed[1], want[1]))


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(2, 4))):
        first = draw(layouts(nprocs))
        shape = first[0]
        if draw(st.booleans()):                             # the same shape but one axis: concatenates
            axis = draw(st.integers(0, len(shape) - 1))
            other_shape = tuple(draw(st.integers(0, 5)) if a == axis else n for a, n in enumerate(shape))
        else:
            other_shape = draw(st.sampled_from([shape, shape[:-1] + (3,), (2,)]))
        other = draw(layouts(nprocs, shape=other_shape))
        operations = shape_operations(draw, shape)
        cases.append((first, other, operations, draw(st.integers(-len(shape) - 1, len(shape)))))
    return cases


test_random_shape_operations_as_numpy = checked_in_batches(batches, run_cases)


@spmd(nprocs=[1, 2, 3])
def test_errors_are_numpys_with_the_global_shape(world):
    d = DistArray.zeros(world, (4, 6), distribution=("cyclic", "block") if world.nprocs != 3 else ("block", None))
    with pytest.raises(ValueError, match=r"cannot reshape array of size 24 into shape \(5,\)"):
        d.reshape(5)
    with pytest.raises(np.exceptions.AxisError, match="axis 2 is out of bounds for array of dimension 2"):
        np.swapaxes(d, 0, 2)
    with pytest.raises(ValueError, match="cannot select an axis to squeeze out which has size not equal to one"):
        np.squeeze(d, 1)
    with pytest.raises(ValueError, match="all the input array dimensions except for the concatenation axis"):
        np.concatenate([d, DistArray.zeros(world, (3, 5))])
    with pytest.raises(ValueError, match="all input arrays must have the same shape"):
        np.stack([d, np.zeros((4, 5))])
    with pytest.raises(NotImplementedError, match="C order only"):
        np.reshape(d, -1, order="F")


@spmd(nprocs=[2, 4])
def test_transpose_keeps_the_layout_and_moves_nothing_when_nothing_changes_owner(world):
    d = DistArray.from_function(world, (6, 5, 3), lambda i, j, k: i * 100 + j * 10 + k,
                                distribution=("block", None, None))
    t = np.swapaxes(d, 1, 2)                    # axes not split trade places: each rank keeps its rows
    assert t.layout.specs == d.layout.specs and np.array_equal(t.local, np.swapaxes(d.local, 1, 2))
    u = d.transpose(2, 0, 1)
    assert u.layout.specs == ("block", None, None) and np.array_equal(u.allgather(), d.allgather().transpose(2, 0, 1))


def count_supersteps(world):
    d = DistArray.zeros(world, (6, 5, 3), distribution=("block", None, None))
    world.sync()
    np.swapaxes(d, 1, 2)
    d.T
    d[1:5:2, ::-1]
    d[2]
    np.expand_dims(d, 1)
    d.reshape(-1)


def test_supersteps_only_where_elements_move():
    require_nprocs(2)
    profiles = []
    bsp.run(count_supersteps, nprocs=2, profile=profiles.append)
    [profile] = profiles
    kinds = [kind for kind in profile.kinds if kind in (superstep_kinds.TRANSPOSE, superstep_kinds.GETITEM,
                                                         superstep_kinds.RESHAPE)]
    assert kinds == [superstep_kinds.TRANSPOSE, superstep_kinds.RESHAPE]
