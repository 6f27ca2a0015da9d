"""np.sort, np.argsort, np.unique and d.sort on DistArrays against numpy on
the gathered array: random shapes (empty too), layouts, grids and nprocs,
many duplicates and NaNs; argsort against numpy's stable order, so the
answer is the same at every nprocs.  Many cases run in one bsp.run."""


import numpy as np
import pytest
from hypothesis import strategies as st

from array_cases import checked_in_batches, layouts
from bsp import DistArray
from bsp.testing import spmd

DTYPES = [np.float64, np.float32, np.int64, np.uint8, np.complex128, np.bool_]


def values(shape, dtype, seed):
    """Few distinct values (ties everywhere), NaNs among the inexact ones,
    and -0.0 next to 0.0."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-2, 3, shape).astype(dtype)
    if np.dtype(dtype).kind == "f":
        a[rng.random(shape) < 0.2] = np.nan
        a[a == 0] = np.where(rng.random(np.count_nonzero(a == 0)) < 0.5, -0.0, 0.0)
    elif np.dtype(dtype).kind == "c":
        a = a + 1j * rng.integers(-1, 2, shape)
        a[rng.random(shape) < 0.1] = complex(np.nan, 0)
        a[rng.random(shape) < 0.1] = complex(1, np.nan)
    return a


def same(got, want):
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), (got, want)


def check_sorts(world, shape, distribution, grid, dtype, seed, axis):
    a = values(shape, dtype, seed)
    d = DistArray.from_function(world, shape, lambda *i: a[i], dtype=dtype, distribution=distribution, grid=grid)
    before = world.superstep
    s = np.sort(d, axis=axis)
    if axis is not None and d.grid[axis] == 1:
        assert world.superstep == before and s.layout == d.layout      # lanes whole here: no communication
    elif axis is not None:
        assert world.superstep == before + 3
        assert s.grid == d.grid and s.layout.specs[axis] == "block"
        assert all(s.layout.specs[i] == d.layout.specs[i] for i in range(d.ndim) if i != axis % d.ndim)
    else:
        assert s.ndim == 1 and s.layout.specs == ("block",)
    same(s.allgather(), np.sort(a, axis=axis, kind="stable"))
    i = np.argsort(d, axis=axis)
    assert i.layout == s.layout
    same(i.allgather(), np.argsort(a, axis=axis, kind="stable"))
    same(d.argsort(axis=axis, kind="quicksort").allgather(), np.argsort(a, axis=axis, kind="stable"))
    if axis is not None:
        d.sort(axis=axis)
        assert d.layout == s.layout and np.array_equal(d.local, s.local, equal_nan=True)


def check_unique(world, shape, distribution, grid, dtype, seed, equal_nan):
    a = values(shape, dtype, seed)
    d = DistArray.from_function(world, shape, lambda *i: a[i], dtype=dtype, distribution=distribution, grid=grid)
    same(np.unique(d, equal_nan=equal_nan).allgather(), np.unique(a, equal_nan=equal_nan))
    got = np.unique(d, return_index=True, return_counts=True, equal_nan=equal_nan)
    want = np.unique(a, return_index=True, return_counts=True, equal_nan=equal_nan)
    for part, expected in zip(got, want):
        assert part.layout.specs == ("block",)
        same(part.allgather(), expected)
    values_only, counts = np.unique(d, return_counts=True)
    same(counts.allgather(), np.unique(a, return_counts=True)[1])


def run_cases(world, cases):
    for layout, dtype, seed, axis, equal_nan in cases:
        check_sorts(world, *layout, dtype, seed, axis)
        check_unique(world, *layout, dtype, seed, equal_nan)


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(3, 6))):
        layout = draw(layouts(nprocs))
        axis = draw(st.one_of(st.none(), st.integers(-len(layout[0]), len(layout[0]) - 1)))
        cases.append((layout, draw(st.sampled_from(DTYPES)), draw(st.integers(0, 2**16)), axis,
                      draw(st.booleans())))
    return cases


test_sort_argsort_unique_agree_with_numpy = checked_in_batches(batches, run_cases)


@spmd(nprocs=[1, 2, 3, 4])
def test_long_arrays_come_out_balanced_whatever_the_duplicates(world):
    n = 1000
    for make in (lambda i: np.zeros(len(i)), lambda i: (i % 7).astype(float), lambda i: -1.0 * i,
                 lambda i: np.where(i % 3 == 0, np.nan, i // 100)):
        d = DistArray.from_function(world, n, make, distribution="cyclic")
        s = np.sort(d)
        assert s.distribution == "block" and len(s.local) in (n // world.nprocs, -(-n // world.nprocs))
        whole = make(np.arange(n))
        same(s.allgather(), np.sort(whole))
        same(np.argsort(d).allgather(), np.argsort(whole, kind="stable"))
    two = DistArray.from_function(world, (4, 300), lambda i, j: ((j * 7919) % 13 - i).astype(float),
                                  distribution=(None, "cyclic"))
    whole = two.allgather()
    same(np.sort(two, axis=1).allgather(), np.sort(whole, axis=1))
    same(np.sort(two, axis=None).allgather(), np.sort(whole, axis=None))


@spmd(nprocs=[1, 3])
def test_errors_are_numpys_on_every_rank(world):
    d = DistArray.zeros(world, (4, 5), distribution=("cyclic", "block"))
    with pytest.raises(np.exceptions.AxisError):
        np.sort(d, axis=2)
    with pytest.raises(np.exceptions.AxisError):
        np.argsort(d, axis=-3)
    with pytest.raises(ValueError, match="sort kind"):
        np.sort(d, kind="fastest")
    with pytest.raises(ValueError):
        np.sort(d, kind="stable", stable=False)
    with pytest.raises(ValueError, match="order"):        # numpy's, for an array without fields
        np.sort(d, order="x")
    with pytest.raises(TypeError):
        d.sort(axis=None)
    with pytest.raises(TypeError, match="return_inverse"):
        np.unique(d, return_inverse=True)
    with pytest.raises(TypeError, match="axis"):
        np.unique(d, axis=0)
    assert world.superstep == 0 and d.local.shape == d.layout.local_shape(world.pid)
