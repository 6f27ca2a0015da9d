"""DistArray's constructors against numpy's (DESIGN §2.2 "creating"): zeros,
ones, empty, full, arange, linspace, eye, from_array, from_local and
np.*_like, gathered, are numpy's array bit for bit (dtype included) at every
nprocs and layout (uneven and replicated ones too), and raise numpy's
exceptions on every rank.  Many cases run in one bsp.run, to keep it fast."""

import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

import bsp
from array_cases import DTYPES, assert_identical, checked_in_batches, layouts, model, replicated_layouts
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.testing import require_nprocs, spmd

AxisError = getattr(getattr(np, "exceptions", np), "AxisError")

NUMBERS = st.one_of(st.integers(-40, 40), st.floats(-50, 50, allow_nan=False),
                    st.floats(-50, 50, allow_nan=False, width=32).map(np.float32), st.integers(-5, 5).map(np.int8),
                    st.complex_numbers(max_magnitude=20, allow_nan=False, allow_infinity=False))
RANGE_DTYPES = st.sampled_from([None, np.int8, np.uint8, np.int64, np.uint64, np.float16, np.float32, np.float64,
                                np.complex64, np.complex128])


def outcome(call):
    """call()'s result, or the type of what it raised."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            return call()
        except Exception as error:      # noqa: BLE001  the exception's type is the answer being compared
            return type(error)


def assert_as_numpy(got, want):
    """got (a DistArray, or an exception type) gathers to numpy's `want`."""
    if isinstance(want, type) or isinstance(got, type):
        assert got is want, (got, want)
        return
    assert isinstance(got, DistArray), got
    assert_identical(got.allgather(), want)


# -- constructors of a shape, on random layouts ---------------------------------------

def check_filled(world, shape, distribution, grid, dtype, fill):
    layout = dict(distribution=distribution, grid=grid)
    for make, numpy_make in [(DistArray.zeros, np.zeros), (DistArray.ones, np.ones)]:
        assert_as_numpy(make(world, shape, dtype, **layout), numpy_make(shape, dtype))
    empty = DistArray.empty(world, shape, dtype, **layout)
    assert empty.dtype == np.dtype(dtype) and empty.shape == shape and empty.grid == empty.layout.grid
    assert_as_numpy(outcome(lambda: DistArray.full(world, shape, fill, **layout)),
                    outcome(lambda: np.full(shape, fill)))
    assert_as_numpy(outcome(lambda: DistArray.full(world, shape, fill, dtype, **layout)),
                    outcome(lambda: np.full(shape, fill, dtype)))
    row = np.arange(shape[-1]) * 0.5
    assert_as_numpy(DistArray.full(world, shape, row, **layout), np.full(shape, row))
    whole = model(shape, dtype)
    d = DistArray.from_array(world, whole, **layout)
    assert_as_numpy(d, whole)
    assert d.local.base is None or not np.shares_memory(d.local, whole)
    for like, numpy_like in [(np.zeros_like, np.zeros_like), (np.ones_like, np.ones_like)]:
        got = like(d, dtype=np.float32)
        assert got.layout == d.layout
        assert_as_numpy(got, numpy_like(whole, dtype=np.float32))
    got = np.full_like(d, 7.9)
    assert got.layout == d.layout and got.distribution == d.distribution
    assert_as_numpy(got, np.full_like(whole, 7.9))
    assert np.empty_like(d).layout == d.layout and np.empty_like(d).dtype == d.dtype


def check_eye(world, shape, distribution, grid, k):
    if len(shape) == 2:
        n, m = shape
        got = DistArray.eye(world, n, m, k, distribution=distribution, grid=grid)
        assert_as_numpy(got, np.eye(n, m, k))
        assert_as_numpy(DistArray.eye(world, n, m, k, dtype=np.int8, distribution=distribution, grid=grid),
                        np.eye(n, m, k, dtype=np.int8))


def run_filled(world, cases):
    for (shape, distribution, grid), dtype, fill, k in cases:
        check_filled(world, shape, distribution, grid, dtype, fill)
        check_eye(world, shape, distribution, grid, k)


@st.composite
def filled_cases(draw, nprocs):
    return [(draw(st.one_of(layouts(nprocs), replicated_layouts())), draw(DTYPES),
             draw(st.one_of(NUMBERS, st.booleans(), st.just(2 ** 70), st.just(-1))), draw(st.integers(-4, 4)))
            for _ in range(draw(st.integers(2, 4)))]


test_zeros_ones_empty_full_eye_from_array_and_likes_are_numpys = checked_in_batches(filled_cases, run_filled)


# -- ranges -------------------------------------------------------------------------------

def run_ranges(world, cases):
    for (start, stop, step, dtype), (low, high, num, endpoint), (distribution, grid) in cases:
        layout = dict(distribution=distribution, grid=grid)
        assert_as_numpy(outcome(lambda: DistArray.arange(world, start, stop, step, dtype, **layout)),
                        outcome(lambda: np.arange(start, stop, step, dtype=dtype)))
        assert_as_numpy(outcome(lambda: DistArray.arange(world, start, **layout)),
                        outcome(lambda: np.arange(start)))
        got = outcome(lambda: DistArray.linspace(world, low, high, num, endpoint, True, dtype, **layout))
        want = outcome(lambda: np.linspace(low, high, num, endpoint, True, dtype))
        if isinstance(want, type) or isinstance(got, type):
            assert got is want, (low, high, num, dtype, got, want)
        else:
            assert_as_numpy(got[0], want[0])
            assert_identical(got[1], want[1])


@st.composite
def range_cases(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(3, 8))):
        # |step| >= 1/4 keeps every range short: start and stop lie within 50 of 0
        start, stop, step = draw(NUMBERS), draw(st.one_of(st.none(), NUMBERS)), draw(NUMBERS.filter(
            lambda step: abs(step) >= 0.25))
        dtype = draw(RANGE_DTYPES)
        linspace = (draw(NUMBERS), draw(NUMBERS), draw(st.integers(0, 30)), draw(st.booleans()))
        _, distribution, grid = draw(st.one_of(layouts(nprocs, shape=(0,)), replicated_layouts(shape=(0,))))
        spec = distribution[0]
        if isinstance(spec, tuple) and spec[0] == "block":         # sizes fit one length only
            distribution, grid = ("block",), None
        cases.append(((start, stop, step, dtype), linspace, (distribution, grid)))
    return cases


test_arange_and_linspace_are_numpys_bit_for_bit_with_numpys_dtypes_and_errors = checked_in_batches(range_cases, run_ranges)


@spmd(nprocs=[1, 3])
def test_ranges_where_numpy_is_not_start_plus_i_times_step(world):
    cases = [(0.5, 5, 1.5, int), (0, 1, 0.1, None), (1e16, 1e16 + 10, 1.5, None), (127, 120, -1, np.int8),
             (250, 260, 2, np.uint8), (0, 3, 1, bool), (1 + 1j, 5 + 3j, 1, None), (0, 5, 1 + 0j, None),
             (0.1, 0.9, 0.1, np.float16), (0, np.float32(1), np.float32(0.1), np.float32),
             (1.6e-290, None, np.float32(1.0), None), (0, -1.6e-290, np.float32(1.0), None)]  # quotients underflow
    for start, stop, step, dtype in cases:
        assert_as_numpy(outcome(lambda: DistArray.arange(world, start, stop, step, dtype)),
                        outcome(lambda: np.arange(start, stop, step, dtype=dtype)))
    for start, stop, num, dtype in [(0, 1, 7, None), (1, 0, 7, int), (np.float32(0), 1, 9, None),
                                    (0, 1e-320, 4, None), (-3, 3, 1, None), (0, 1j, 5, None)]:
        assert_as_numpy(DistArray.linspace(world, start, stop, num, dtype=dtype, distribution="cyclic"),
                        np.linspace(start, stop, num, dtype=dtype))
    got, step = DistArray.linspace(world, 0, 1, 1, retstep=True)
    assert np.isnan(step) and np.array_equal(got.allgather(), [0.0])


@spmd(nprocs=[1, 2])
def test_range_errors_are_numpys(world):
    for arguments, error in [((0, 5, 0), ZeroDivisionError), ((float("nan"),), ValueError),
                             ((0, 1e300, 1e-300), ValueError), ((0, 3, 1, bool), TypeError),
                             ((0, 5, 1, "U3"), TypeError)]:
        with pytest.raises(error):
            DistArray.arange(world, *arguments)
    for arguments, keywords, error in [((0, 1, -1), {}, ValueError), ((0, 1, 2.5), {}, TypeError),
                                       ((0, 1, 5), {"axis": 1}, AxisError),
                                       (([0, 1], 2, 5), {}, ValueError)]:
        with pytest.raises(error):
            DistArray.linspace(world, *arguments, **keywords)
    for arguments in [(2.5,), (3, 2.0), (3, 3, 1.0)]:
        with pytest.raises(TypeError):
            DistArray.eye(world, *arguments)
    with pytest.raises(ValueError, match="negative dimensions"):
        DistArray.eye(world, -1)
    with pytest.raises(ValueError):
        DistArray.full(world, (3, 2), [1, 2, 3])                # does not broadcast, as in np.full
    with pytest.raises(OverflowError):
        DistArray.full(world, (world.nprocs - 1, 1), 2 ** 70, np.int64)  # on every rank, empty parts included


# -- from the ranks' own parts ------------------------------------------------------------

def check_from_local(world, shape_of, axis, dtype):
    ndim = len(shape_of(0))
    joined = axis % ndim
    parts = [(np.full(shape_of(pid), pid) + np.arange(shape_of(pid)[axis]).reshape((-1,) + (1,) * (ndim - joined - 1))
              ).astype(dtype) for pid in range(world.nprocs)]
    d = DistArray.from_local(world, parts[world.pid], axis)
    sizes = tuple(part.shape[axis] for part in parts)
    assert d.distribution == tuple(("block", sizes) if a == joined else None for a in range(d.ndim))
    assert d.grid == tuple(world.nprocs if a == joined else 1 for a in range(d.ndim)) and d.counts(axis) == sizes
    assert d.local is parts[world.pid] or np.array_equal(d.local, parts[world.pid])
    assert_as_numpy(d, np.concatenate(parts, axis))


def run_from_local(world, cases):
    for shapes, axis, dtype in cases:
        check_from_local(world, lambda pid: shapes[pid], axis, dtype)


@st.composite
def local_cases(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(2, 5))):
        ndim = draw(st.integers(1, 3))
        axis = draw(st.integers(-ndim, ndim - 1))
        common = draw(st.lists(st.integers(0, 4), min_size=ndim, max_size=ndim))
        shapes = []
        for _ in range(nprocs):
            shape = list(common)
            shape[axis] = draw(st.integers(0, 4))
            shapes.append(tuple(shape))
        cases.append((shapes, axis, draw(DTYPES)))
    return cases


test_from_local_joins_the_parts_in_pid_order = checked_in_batches(local_cases, run_from_local)


def from_local_once(world):
    DistArray.from_local(world, np.zeros((world.pid, 2)))


def test_from_local_is_one_superstep_of_its_own():
    require_nprocs(3)
    profiles = []
    bsp.run(from_local_once, nprocs=3, profile=profiles.append)
    assert list(profiles[0].kinds).count(superstep_kinds.FROM_LOCAL) == 1


@spmd(nprocs=[2, 3])
def test_from_local_refuses_parts_that_disagree_on_every_rank(world):
    last = world.nprocs - 1
    odd = world.pid == last
    with pytest.raises(ValueError, match=rf"every axis but axis 0; rank 0's has shape \(1, 3\), rank {last}'s "
                                         rf"\(1, 4\)"):
        DistArray.from_local(world, np.zeros((1, 4 if odd else 3)))
    with pytest.raises(ValueError, match=rf"same dtype; rank 0's is float64, rank {last}'s float32"):
        DistArray.from_local(world, np.zeros(2, np.float32 if odd else np.float64))
    with pytest.raises(ValueError, match=rf"same number of axes, at least one; rank 0's has shape \(2,\), "
                                         rf"rank {last}'s \(2, 1\)"):
        DistArray.from_local(world, np.zeros((2, 1) if odd else 2))
    with pytest.raises(ValueError, match="at least one"):
        DistArray.from_local(world, np.float64(world.pid))
    with pytest.raises(AxisError):
        DistArray.from_local(world, np.zeros((2, 2)), axis=2)
    with pytest.raises(TypeError, match="axis must be an int"):
        DistArray.from_local(world, np.zeros(2), axis=0.0)
    ok = DistArray.from_local(world, np.zeros((3, world.pid)), axis=-1)
    assert ok.shape == (3, sum(range(world.nprocs)))


@spmd(nprocs=[1, 3])
def test_likes_of_another_shape_keep_the_distribution_with_regular_blocks(world):
    d = DistArray.from_local(world, np.ones((world.pid + 1, 2)))
    z = np.zeros_like(d, shape=(4, 5))
    assert z.shape == (4, 5) and z.distribution == ("block", None) and z.grid == d.grid
    assert np.array_equal(z.allgather(), np.zeros((4, 5)))
    c = DistArray.zeros(world, 6, distribution="cyclic")
    assert np.ones_like(c, shape=(3, 2)).distribution == "cyclic"
    assert np.full_like(c, 2, shape=7).layout == DistArray.zeros(world, 7, distribution="cyclic").layout
    r = np.empty_like(DistArray.zeros(world, (2, 2), distribution=(None, None)), shape=(3,))
    assert r.distribution == "block"
    with pytest.raises(ValueError, match="order must be one of"):
        np.zeros_like(d, order="Z")
    with pytest.raises(ValueError, match="Device not understood"):
        np.ones_like(d, device="gpu")
