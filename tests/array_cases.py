"""Hypothesis strategies for DistArray tests: (shape, distribution, grid)
triples that `nprocs` ranks can hold, and a serial model array to check
against.

    from array_cases import layouts, model

    @given(data=st.data())
    def test_x(nprocs, data):
        shape, distribution, grid = data.draw(layouts(nprocs))

Shapes have 1 to 3 axes of 0 to 7 elements (empty axes included).  Each
axis is None (not split), "block", "cyclic", ("block-cyclic", b) or
("block", sizes) with uneven sizes (parts of 0 elements too); `grid` is
None when the default rule gives the same grid, else an explicit one that
factors nprocs over the split axes in a random order (so 1 x p and p x 1
both come up).  At any nprocs, a layout may be replicated: every axis None
(grid all 1s), every rank holding all of it.
"""

from __future__ import annotations

import math
import os
from typing import Any, Callable, Sequence

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsp

from bsp.objects.grid import dims_create
from bsp.testing import require_nprocs

SIZES = "sizes"     # a marker while drawing: ("block", sizes), filled in once the grid is known
SPLITTERS = st.one_of(st.sampled_from(["block", "cyclic", SIZES]),
                      st.tuples(st.just("block-cyclic"), st.integers(1, 3)))
DTYPES = st.sampled_from([np.float64, np.float32, np.int64, np.int32, np.uint8, np.complex128, np.bool_])


def shapes(max_ndim: int = 3, max_length: int = 7, min_ndim: int = 1) -> st.SearchStrategy[tuple[int, ...]]:
    """Global shapes of min_ndim..max_ndim axes, each 0..max_length long."""
    return st.lists(st.integers(0, max_length), min_size=min_ndim, max_size=max_ndim).map(tuple)


def model(shape: tuple[int, ...], dtype: Any = np.float64, seed: int = 0) -> np.ndarray:
    """The serial global array: distinct values (as far as the dtype has
    them), so that a misplaced element shows."""
    count = np.arange(math.prod(shape), dtype=np.int64).reshape(shape) + seed
    kind = np.dtype(dtype).kind
    if kind == "f":
        values: np.ndarray = count * 1.25 + 0.5
    elif kind == "c":
        values = count * 1.25 + 1j * (count * 0.5 + 1)
    elif kind == "b":
        values = count % 3 == 1
    else:
        values = count
    return values.astype(dtype)


def default_grid(specs: tuple[Any, ...], nprocs: int) -> tuple[int, ...] | None:
    """The grid that grid=None stands for (DESIGN §2.1, §2.2): an axis of
    ("block", sizes) has len(sizes) coordinates; the other split axes share
    the remaining ranks near-squarely, like MPI_Dims_create; replicated
    arrays have all 1s.  None where no grid fits."""
    fixed = {axis: len(spec[1]) for axis, spec in enumerate(specs) if _has_sizes(spec)}
    free = [axis for axis, spec in enumerate(specs) if spec is not None and axis not in fixed]
    rest, remainder = divmod(nprocs, math.prod(fixed.values()))
    if all(spec is None for spec in specs):
        return (1,) * len(specs)
    if remainder or (not free and rest != 1):
        return None
    extents = dict(fixed)
    extents.update(zip(free, dims_create(rest, len(free)) if free else ()))
    return tuple(extents.get(axis, 1) for axis in range(len(specs)))


def _has_sizes(spec: Any) -> bool:
    return isinstance(spec, tuple) and spec[0] == "block" and isinstance(spec[1], tuple)


@st.composite
def factored(draw: Any, specs: tuple[Any, ...], nprocs: int) -> tuple[int, ...]:
    """An explicit grid: nprocs factored over the split axes in a random
    order; all 1s when no axis is split (replicated)."""
    split = [axis for axis, spec in enumerate(specs) if spec is not None]
    if not split:
        return (1,) * len(specs)
    extents, rest = {}, nprocs
    for axis in draw(st.permutations(split))[:-1]:
        extents[axis] = draw(st.sampled_from([d for d in range(1, rest + 1) if rest % d == 0]))
        rest //= extents[axis]
    extents[next(axis for axis in split if axis not in extents)] = rest
    return tuple(extents.get(axis, 1) for axis in range(len(specs)))


@st.composite
def part_sizes(draw: Any, n: int, parts: int) -> tuple[int, ...]:
    """`parts` non-negative sizes that add up to n (zeros included)."""
    cuts = sorted(draw(st.lists(st.integers(0, n), min_size=parts - 1, max_size=parts - 1)))
    bounds = [0, *cuts, n]
    return tuple(b - a for a, b in zip(bounds, bounds[1:]))


@st.composite
def layouts(draw: Any, nprocs: int, shape: tuple[int, ...] | None = None, block_only: bool = False,
            replicated: bool = True, uneven: bool = True) -> tuple[tuple[int, ...], tuple[Any, ...], Any]:
    """(shape, distribution, grid) that nprocs ranks can hold: one spec per
    axis.  block_only: only "block" and None; replicated: every axis None
    may come up at nprocs > 1; uneven: ("block", sizes) may come up."""
    if shape is None:
        shape = draw(shapes())
    splitter = st.just("block") if block_only else SPLITTERS
    if not uneven:
        splitter = splitter.filter(lambda spec: spec != SIZES)
    specs = list(draw(st.lists(st.one_of(st.none(), splitter), min_size=len(shape), max_size=len(shape))))
    if nprocs > 1 and all(s is None for s in specs) and not (replicated and draw(st.booleans())):
        specs[draw(st.integers(0, len(shape) - 1))] = "block"
    grid = draw(factored(tuple(specs), nprocs))
    for axis, spec in enumerate(specs):
        if spec == SIZES:
            specs[axis] = ("block", draw(part_sizes(shape[axis], grid[axis])))
    distribution = tuple(specs)
    if default_grid(distribution, nprocs) == grid and draw(st.booleans()):
        return shape, distribution, None
    return shape, distribution, grid


@st.composite
def replicated_layouts(draw: Any, shape: tuple[int, ...] | None = None
                       ) -> tuple[tuple[int, ...], tuple[Any, ...], Any]:
    """(shape, (None, ...), grid None or all 1s): every rank holds it all."""
    if shape is None:
        shape = draw(shapes())
    return shape, (None,) * len(shape), draw(st.sampled_from([None, (1,) * len(shape)]))


def held_window(d: Any) -> tuple[slice | np.ndarray, ...]:
    """The index of this rank's part of d in the global array (np.ix_
    semantics): compare `d.local` with `model(...)[held_window(d)]`."""
    return np.ix_(*(d.index(axis) for axis in range(d.ndim)))


def assert_identical(got: Any, want: Any) -> None:
    """got is want: the same dtype, shape and bits (NaNs and signed zeros
    included; extended precision compared by value, its padding bytes
    being undefined; objects by value)."""
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, got.shape, want.dtype, want.shape)
    if want.dtype == object:
        assert got.tolist() == want.tolist(), (got, want)
    elif want.dtype in (np.longdouble, np.clongdouble) and np.dtype(np.longdouble) != np.float64:
        assert np.array_equal(got, want, equal_nan=True), (got, want)
    else:
        assert got.tobytes() == want.tobytes(), (got, want)


NPROCS = [1, 2, 3, 4]
EXAMPLES = max(int(os.environ.get("BSP_PROPERTY_EXAMPLES", 60)) // 6, 1)
PROPERTIES = settings(max_examples=EXAMPLES, deadline=None,
                      suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])


def checked_in_batches(draw_batch: Callable[[int], st.SearchStrategy[Any]], check: Callable[..., Any],
                       nprocs: Sequence[int] = tuple(NPROCS)) -> Callable[..., None]:
    """A pytest test: for each nprocs, hypothesis draws a batch of cases
    (`draw_batch(nprocs)`) and one bsp.run checks the whole batch
    (`check(world, batch)`), so that many cases share one run's start."""
    @pytest.mark.parametrize("nprocs", nprocs)
    @PROPERTIES
    @given(data=st.data())
    def test(nprocs: int, data: Any) -> None:
        require_nprocs(nprocs)
        bsp.run(check, data.draw(draw_batch(nprocs)), nprocs=nprocs)
    return test
