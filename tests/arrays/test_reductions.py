"""Reductions (sum prod min max mean std var argmin argmax all any
count_nonzero) and scans (cumsum cumprod) of DistArrays against numpy on the
gathered array: random shapes (empty axes too), layouts, grids, dtypes,
axes (None, ints, tuples, negative, repeated and out of range), keepdims,
ddof and dtype=; as np.f(d) and as d.f().  numpy's exception type where
numpy raises, on every rank.  Then the layouts of the results and the
supersteps they cost.  Many cases run in one bsp.run."""

import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

import bsp
from array_cases import checked_in_batches, layouts
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.testing import require_nprocs, spmd

DTYPES = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.complex128, np.bool_]
REDUCTIONS = ["sum", "prod", "min", "max", "mean", "std", "var", "argmin", "argmax", "all", "any", "count_nonzero"]
SCANS = ["cumsum", "cumprod"]
METHODS = set(REDUCTIONS + SCANS) - {"count_nonzero"}


def sample(shape, dtype, seed):
    """Small values with many ties (first occurrences matter to argmax),
    and NaNs in some inexact arrays."""
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, shape).astype(dtype)
    if np.dtype(dtype).kind in "fc" and seed % 3 == 0:
        a[rng.random(shape) < 0.15] = np.nan
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.integers(-1, 2, shape)
    return a


def numpy_answer(function, a, kwargs):
    """numpy's answer, or the exception it raises."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return function(a, **kwargs)
        except Exception as error:      # the oracle's exception is what the DistArray must raise
            return error


def ours(d, name, kwargs, as_method):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return getattr(d, name)(**kwargs) if as_method else getattr(np, name)(d, **kwargs)


def close(got, want):
    """Exact for integers and bools, near for inexact results (NaN == NaN)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    if want.dtype.kind in "fc":
        tolerance = 1e-4 if want.dtype in (np.float32, np.complex64) else 1e-9
        assert np.allclose(got, want, rtol=tolerance, atol=tolerance, equal_nan=True), (got, want)
    else:
        assert np.array_equal(got, want), (got, want)


def check_case(world, case):
    shape, distribution, grid, dtype, seed, name, kwargs, as_method = case
    a = sample(shape, dtype, seed)
    d = DistArray.from_function(world, shape, lambda *i: a[i], dtype=dtype, distribution=distribution, grid=grid)
    want = numpy_answer(getattr(np, name), a, kwargs)
    if isinstance(want, Exception):
        with pytest.raises(type(want)):
            ours(d, name, kwargs, as_method)
        return
    got = ours(d, name, kwargs, as_method)
    if isinstance(want, np.ndarray):
        assert isinstance(got, DistArray), (name, kwargs, got)
        close(got.allgather(), want)
    else:
        assert type(got) is type(want), (name, kwargs, type(got), type(want))
        close(got, want)


def run_cases(world, cases):
    for case in cases:
        check_case(world, case)


@st.composite
def axes(draw, ndim, tuples=True):
    """None, an int (out of range too), or a tuple (repeats too)."""
    single = st.integers(-ndim - 1, ndim)
    choices = [st.none(), single]
    if tuples:
        choices.append(st.lists(st.integers(-ndim, ndim - 1), max_size=ndim + 1).map(tuple))
    return draw(st.one_of(*choices))


@st.composite
def cases(draw, nprocs):
    shape, distribution, grid = draw(layouts(nprocs))
    dtype = draw(st.sampled_from(DTYPES))
    name = draw(st.sampled_from(REDUCTIONS + SCANS))
    kwargs = {"axis": draw(axes(len(shape), tuples=name not in ("argmin", "argmax")))}
    if name not in SCANS and draw(st.booleans()):
        kwargs["keepdims"] = draw(st.booleans())
    if name in ("std", "var"):
        kwargs["ddof"] = draw(st.integers(0, 2))
    if name in ("sum", "prod", "mean", "cumsum", "cumprod") and draw(st.booleans()):
        kwargs["dtype"] = draw(st.sampled_from([np.float64, np.int64, np.complex128]))
    as_method = name in METHODS and draw(st.booleans())
    return shape, distribution, grid, dtype, draw(st.integers(0, 5)), name, kwargs, as_method


test_reductions_and_scans_are_numpys = checked_in_batches(
    lambda nprocs: st.lists(cases(nprocs), min_size=8, max_size=16), run_cases)


# -- chosen cases ----------------------------------------------------------------

def from_model(world, a, distribution="block", grid=None):
    return DistArray.from_function(world, a.shape, lambda *i: a[i], dtype=a.dtype, distribution=distribution,
                                   grid=grid)


@spmd(nprocs=[1, 2, 3, 4])
def test_the_issues_defects_argmax_and_cumsum_answer_as_numpy(world):
    a = sample((5, 7), np.float64, 1)
    for distribution in [("cyclic", "block"), (("block-cyclic", 2), None), (None, "cyclic")]:
        d = from_model(world, a, distribution)
        assert np.argmax(d) == np.argmax(a) and type(np.argmax(d)) is type(np.argmax(a))
        close(np.cumsum(d).allgather(), np.cumsum(a))
        close(np.cumsum(d, axis=1).allgather(), np.cumsum(a, axis=1))
        close(d.cumprod(axis=0).allgather(), np.cumprod(a, axis=0))
    ones = from_model(world, np.ones(6))
    assert np.argmax(ones) == 0 and np.argmin(ones) == 0          # first occurrence on ties


@spmd(nprocs=[1, 2, 4])
def test_nan_wins_argmax_and_argmin_at_its_first_occurrence(world):
    a = np.array([[1.0, 5.0, np.nan, 5.0], [np.nan, 0.0, 7.0, 7.0], [2.0, 2.0, 2.0, -1.0]])
    for distribution in [("cyclic", "cyclic"), ("block", None), (None, ("block-cyclic", 3))]:
        d = from_model(world, a, distribution)
        for axis in (None, 0, 1, -1):
            for name in ("argmax", "argmin", "max", "min"):
                want = getattr(np, name)(a, axis=axis)
                got = getattr(np, name)(d, axis=axis)
                close(got if axis is None else got.allgather(), want)


@spmd(nprocs=[1, 2, 3, 4])
def test_mean_and_var_are_accurate_on_large_offsets(world):
    a = 1e8 + np.sin(np.arange(4000.0)).reshape(40, 100)
    d = from_model(world, a, ("cyclic", "block"))
    for axis in (None, 0, 1):
        for name in ("mean", "var", "std"):
            got = getattr(d, name)(axis=axis)
            got = got if axis is None else got.allgather()
            assert np.allclose(got, getattr(np, name)(a, axis=axis), rtol=1e-6, atol=0), (name, axis)   # E[x^2]-E[x]^2: off by ~1


@spmd(nprocs=[1, 2, 3, 4])
def test_initial_where_and_the_ufunc_methods(world):
    a = sample((6, 5), np.float64, 2)
    d = from_model(world, a, ("cyclic", "block"))
    mask = a > 0
    masks = [mask, from_model(world, mask, ("block", "cyclic")), mask[0], True]
    for m in masks:
        expected = m if not isinstance(m, DistArray) else mask
        for axis in (None, 0, 1):
            close(np.sum(d, axis=axis, where=m, initial=2.0) if axis is None
                  else np.sum(d, axis=axis, where=m, initial=2.0).allgather(),
                  np.sum(a, axis=axis, where=expected, initial=2.0))
            want = np.max(a, axis=axis, where=expected, initial=-10.0)
            got = d.max(axis=axis, where=m, initial=-10.0)
            close(got if axis is None else got.allgather(), want)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)      # a column all masked: NaN, as numpy
                want = np.mean(a, axis=axis, where=expected)
                got = np.mean(d, axis=axis, where=m)
            close(got if axis is None else got.allgather(), want)
    with pytest.raises(ValueError):
        np.min(d, where=mask)                           # numpy: no identity, so where= needs initial=
    with pytest.raises(ValueError):
        np.sum(d, where=np.ones(4, bool))               # does not broadcast to (6, 5)
    close(np.add.reduce(d).allgather(), np.add.reduce(a))
    close(np.multiply.reduce(d, axis=1).allgather(), np.multiply.reduce(a, axis=1))
    assert np.maximum.reduce(d, axis=None) == np.maximum.reduce(a, axis=None)
    close(np.logical_or.reduce(d > 0, axis=0).allgather(), np.logical_or.reduce(a > 0, axis=0))
    close(np.add.accumulate(d, axis=1).allgather(), np.add.accumulate(a, axis=1))
    close(np.multiply.accumulate(d).allgather(), np.multiply.accumulate(a))
    for method in (lambda: np.maximum.accumulate(d), lambda: np.add.reduceat(d, [0, 2]),
                   lambda: np.add.outer(d, d), lambda: np.add.at(d, [0], 1.0)):
        with pytest.raises(TypeError, match=r"numpy\.(maximum|add)\.(accumulate|reduceat|outer|at)"):
            method()
    with pytest.raises(TypeError, match="out="):
        np.sum(d, out=from_model(world, np.zeros(5), "block"))
    with pytest.raises(TypeError, match="mean="):
        np.var(d, mean=a.mean())


def supersteps(world, operation):
    """The result of operation() and the supersteps it took."""
    before = world.superstep
    result = operation()
    return result, world.superstep - before


@spmd(nprocs=[4])
def test_results_keep_the_remaining_axes_distribution_and_cost_one_superstep(world):
    a = sample((8, 6, 3), np.float64, 4)
    d = from_model(world, a, ("cyclic", ("block-cyclic", 2), None), (2, 2, 1))
    s, steps = supersteps(world, lambda: d.sum(axis=2))           # reduces no split axis: local
    assert steps == 0 and s.layout.specs == ("cyclic", ("block-cyclic", 2)) and s.grid == (2, 2)
    s, steps = supersteps(world, lambda: d.sum(axis=0, keepdims=True))     # a split axis: one superstep
    assert steps == 1 and s.shape == (1, 6, 3)
    assert s.layout.specs == (None, ("block-cyclic", 2), None) and s.grid == (1, 4, 1)
    close(s.allgather(), a.sum(axis=0, keepdims=True))
    s, steps = supersteps(world, lambda: d.max(axis=(0, 1)))      # no remaining axis split: replicated
    assert steps == 1 and s.layout.specs == (None,) and np.array_equal(s.local, a.max(axis=(0, 1)))
    c, steps = supersteps(world, lambda: d.cumsum(axis=0))        # cyclic: to block first, then the scan
    assert steps == 2 and c.layout.specs == ("block", ("block-cyclic", 2), None)
    close(c.allgather(), a.cumsum(axis=0))
    _, steps = supersteps(world, lambda: c.cumsum(axis=0))        # block already: the scan only
    assert steps == 1
    _, steps = supersteps(world, lambda: c.cumsum(axis=2))        # an axis not split: local
    assert steps == 0
    d1 = from_model(world, np.arange(10.0), "cyclic")
    assert d1.sum(axis=0) == 45.0 and d1.distribution == "cyclic"


def reduce_twice(world):
    d = DistArray.from_function(world, (400, 300), lambda i, j: i + j * 0.5, distribution=("block", "block"))
    world.sync()
    d.sum()
    d.sum(axis=0)


def test_a_reduction_sends_partials_not_the_array():
    require_nprocs(4)
    profiles = []
    bsp.run(reduce_twice, nprocs=4, profile=profiles.append)
    [profile] = profiles
    steps = [i for i, kind in enumerate(profile.kinds) if kind == superstep_kinds.REDUCTION]
    assert len(steps) == 2
    whole, columns = steps
    assert profile.bytes_sent[:, whole].max() < 3 * 1000             # p-1 scalars (and their headers)
    assert profile.bytes_sent[:, columns].max() < 150 * 8 + 1000       # at most this rank's 150 column sums
    assert "test_reductions.py" in profile.sites[0][whole]
