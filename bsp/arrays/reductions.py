"""Reductions and scans of DistArrays: sum prod min max mean std var argmin
argmax all any count_nonzero (np.amin, np.amax; np.add.reduce and kin),
cumsum cumprod (np.add.accumulate, np.multiply.accumulate).

Arguments are checked by numpy itself, on a stand-in of one element per
axis (none along an empty axis) of the array's dtype: every rank raises
numpy's exception (AxisError, a repeated axis, min of an empty array, ...)
before any superstep, and the result's dtype is numpy's.

A reduction over `axis` (None, an int or a tuple) is a local reduction of
each rank's part, giving a *partial* for each element of the result that
the part touches, and then at most one superstep (kind `reduction`): every
rank sends each rank the partials of the result elements that rank holds,
which folds them in pid order (the grid order of the reduced axes).
The result is a DistArray whose remaining axes keep their distribution and
grid when the reduced axes were not split, else the same kinds of split
(uneven blocks made regular) over all the ranks, replicated when no
remaining axis is split; or, for a 0-d result, numpy's scalar type on every
rank.  With r the elements of this rank's partial (the product of its
part's lengths along the remaining axes) and k the ranks whose parts share
its remaining indices:

    no superstep when no reduced axis is split;
    else 1 superstep, h = (k-1) r words for a replicated result (axis=None:
    p-1 words), at most r words otherwise; mean sends 2 words per element,
    var and std 3, argmin and argmax 2.

mean, var and std combine (count, sum) and (count, mean, M2) partials
(Chan et al.'s pairwise update, no E[x^2]-E[x]^2); argmin and argmax
combine (value, global index) and keep the first occurrence, NaN first,
as numpy.

A scan (cumsum, cumprod) along an axis split into "block" parts is a local
scan and one superstep (kind `scan`) in which each rank sends the total of
its part along the axis (r words) to the later ranks of its grid line
(h = (P-1) r for P ranks along the axis), which fold them in grid order
into the offset of their own part.  A cyclic or block-cyclic axis is first
made "block" (one superstep, kind `scan_to_block`, h at most the part),
and the result keeps that layout.  axis=None scans the array flattened in
C order (np.ravel: see its cost), a one-dimensional "block" DistArray.
"""

from __future__ import annotations

import functools
import math
import operator
import warnings
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from bsp.arrays import numpy_functions, remap, superstep_kinds
from bsp.arrays.distarray import DistArray
from bsp.arrays.distribution import Layout, as_index, block_of, layout_of, single_spec
from bsp.arrays.elementwise import broadcast_shape, global_shape, implements_method, localize, numpy_shape, regrid
from bsp.arrays.numpy_functions import implements
from bsp.objects import collectives

NoValue: Any = getattr(np, "_NoValue")      # numpy's "not given", so that numpy's own defaults apply
Partial = tuple[np.ndarray, ...]


class Reduction(NamedTuple):
    """How one reduction is computed.  `local(x, axes, where)`: this rank's
    partial, a tuple of arrays over the remaining axes of its part x;
    `combine`: two partials folded into one (associative); `finish`: the
    folded partial as the result's values; `needs_data`: a part with
    nothing to reduce has no partial (min, max, argmin, argmax)."""

    local: Callable[[np.ndarray, tuple[int, ...], Any], Partial]
    combine: Callable[[Partial, Partial], Partial]
    finish: Callable[[Partial], np.ndarray]
    needs_data: bool = False


def _given(**options: Any) -> dict[str, Any]:
    """The options the caller gave (numpy's defaults stand for the rest)."""
    return {name: value for name, value in options.items() if value is not NoValue}


def _probe(function: Callable[..., Any], d: DistArray, **options: Any) -> Any:
    """`function` on a stand-in of d (its dtype, one element per axis, none
    along an empty one): numpy's exception for bad arguments, else numpy's
    result, whose type and dtype are the answer's."""
    stand_in = np.zeros(tuple(min(n, 1) for n in d.shape), d.dtype)
    if "where" in options:
        options["where"] = np.ones(stand_in.shape, bool)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(stand_in, **options)


def _no_out(function: Callable[..., Any], out: Any) -> None:
    if out is not None:
        raise TypeError(f"numpy.{function.__name__} on bsp.DistArray takes no out=: use its result "
                        "(a new DistArray, or a scalar)")


def _axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """`axis` (already checked by numpy) as a sorted tuple of axes."""
    if axis is None:
        return tuple(range(ndim))
    axis = axis if isinstance(axis, tuple) else (axis,)
    return tuple(sorted(operator.index(a) % ndim for a in axis))


def _mask(d: DistArray, where: Any) -> Any:
    """This rank's slice of a where= mask (True: none), broadcast to d.
    ValueError as numpy when it does not broadcast to d's shape."""
    if where is True or where is NoValue:
        return True
    shape = global_shape(where)
    if broadcast_shape([d.shape, shape]) != d.shape:
        raise ValueError(f"the where= mask of shape {numpy_shape(shape)} does not broadcast to the array's "
                         f"shape {numpy_shape(d.shape)}")
    return localize(where, d.layout, d.shape, d.world.pid)


def reduce(d: DistArray, function: Callable[..., Any], reduction: Reduction, axis: Any, keepdims: Any,
           options: dict[str, Any], where: Any = NoValue) -> Any:
    """The driver of every reduction (see the module's docstring): check
    the arguments with numpy (`function` and `options`, those the caller
    gave), reduce locally, exchange and fold the partials, finish."""
    where = NoValue if where is True else where         # ufunc.reduce's default, as if not given
    probe_options = _given(axis=axis, keepdims=keepdims, where=where, **options)
    answer = _probe(function, d, **probe_options)
    axes = _axes(axis, d.ndim)
    keep = keepdims is not NoValue and bool(keepdims)
    kept = [a for a in range(d.ndim) if a not in axes]
    mask = _mask(d, where)
    nprocs = d.world.nprocs
    full_shape = tuple(1 if a in axes else n for a, n in enumerate(d.shape))
    specs = [None if a in axes else spec for a, spec in enumerate(d.layout.specs)]
    grid = [1 if a in axes else extent for a, extent in enumerate(d.grid)]
    single = single_spec(d.distribution) if 0 in kept else None
    full, full_given = regrid(full_shape, specs, grid, nprocs, single)
    empty = reduction.needs_data and math.prod(d.local.shape[a] for a in axes) == 0
    partial = None if empty else tuple(np.asarray(part) for part in reduction.local(d.local, axes, mask))
    contributions = _exchange(d, axes, kept, partial, lambda pid: [full.indices(pid)[a] for a in kept])
    kept_shape = tuple(full.local_shape(d.world.pid)[a] for a in kept)
    values = _fold(contributions, kept_shape, reduction)
    dtype = np.asarray(answer).dtype
    values = np.empty(kept_shape, dtype) if values is None else np.asarray(values).astype(dtype, copy=False)
    if keep:
        return DistArray._of(d.world, full, full_given, values.reshape(full.local_shape(d.world.pid)))
    if not kept:
        value = values[()]
        return value if isinstance(answer, np.generic) else type(answer)(value)
    layout, given = regrid(tuple(d.shape[a] for a in kept), [full.specs[a] for a in kept],
                           [full.grid[a] for a in kept], nprocs, single)
    return DistArray._of(d.world, layout, given, values)


def _exchange(d: DistArray, axes: tuple[int, ...], kept: list[int], partial: Partial | None,
              result_indices: Callable[[int], list[np.ndarray]]) -> list[tuple[Any, Partial]]:
    """Every rank's partials of the result elements this rank holds, as
    (index into this rank's block of the result, partial), in pid order.
    No superstep when each rank's partial is exactly its part of the result
    (no reduced axis split), else one of kind `reduction`."""
    world = d.world
    me = world.pid

    def overlap(source: int, want: Sequence[np.ndarray]) -> tuple[Any, Any] | None:
        held = d.layout.indices(source)
        pairs = [np.intersect1d(held[a], indices, assume_unique=True, return_indices=True)[1:]
                 for a, indices in zip(kept, want)]
        if any(len(here) == 0 for here, _ in pairs):
            return None
        return block_of([as_index(here) for here, _ in pairs]), block_of([as_index(there) for _, there in pairs])

    mine = result_indices(me)
    local_only = all(d.grid[a] == 1 for a in axes) and all(
        all(np.array_equal(d.layout.indices(pid)[a], indices) for a, indices in zip(kept, result_indices(pid)))
        for pid in range(world.nprocs))
    if local_only:
        return [] if partial is None else [(tuple(slice(None) for _ in kept), partial)]
    posts = []
    sending = () if partial is None else partial
    for dest in range(world.nprocs) if sending else ():
        piece = overlap(me, result_indices(dest)) if dest != me else None
        if piece is not None:
            posts.append(((dest,), tuple(np.asarray(part[piece[0]], order="C") for part in sending)))
    arrived = dict(collectives.superstep(world.engine, superstep_kinds.REDUCTION, posts))
    if partial is not None:
        arrived[me] = partial
    contributions = []
    for source in sorted(arrived):
        piece = overlap(source, mine)
        if piece is not None:
            values = arrived[source]
            contributions.append((piece[1], tuple(part[piece[0]] for part in values) if source == me else values))
    return contributions


def _fold(contributions: list[tuple[Any, Partial]], shape: tuple[int, ...], reduction: Reduction
          ) -> np.ndarray | None:
    """The contributions folded, in order, into this rank's block of the
    result, and finished; None if nothing arrived (an empty block)."""
    block: list[np.ndarray] | None = None
    seen = np.zeros(shape, bool)
    for index, piece in contributions:
        if block is None:
            block = [np.empty(shape, part.dtype) for part in piece]
        before = seen[index]
        if before.any():
            with np.errstate(all="ignore"):
                folded = reduction.combine(tuple(part[index] for part in block), piece)
            piece = tuple(np.where(before, new, old) for new, old in zip(folded, piece))
        for part, values in zip(block, piece):
            part[index] = values
        seen[index] = True
    return None if block is None else reduction.finish(tuple(block))


# -- how each reduction combines --------------------------------------------------

def _pairwise(ufunc: np.ufunc) -> Callable[[Partial, Partial], Partial]:
    def combine(a: Partial, b: Partial) -> Partial:
        return tuple(ufunc(x, y) for x, y in zip(a, b))
    return combine


def _first(partial: Partial) -> np.ndarray:
    return partial[0]


def _single(function: Callable[..., Any], **options: Any) -> Callable[[np.ndarray, tuple[int, ...], Any], Partial]:
    """A partial of one array: `function` over the reduced axes of the part."""
    def local(x: np.ndarray, axes: tuple[int, ...], mask: Any) -> Partial:
        return (function(x, axis=axes, **options, **({} if mask is True else {"where": mask})),)
    return local


def _accumulator(dtype: np.dtype, requested: Any) -> np.dtype:
    """The dtype numpy's mean and var add in: the requested one, float64
    for integers and bools, float32 for float16, else the array's."""
    if requested is not None:
        chosen: np.dtype = np.dtype(requested)
        return chosen
    if dtype.kind in "biu":
        return np.dtype(np.float64)
    if dtype == np.dtype(np.float16):
        return np.dtype(np.float32)
    return dtype


def _count(x: np.ndarray, axes: tuple[int, ...], mask: Any) -> np.ndarray:
    """Per remaining element of the part, how many elements it reduces."""
    if mask is True:
        shape = tuple(n for a, n in enumerate(x.shape) if a not in axes)
        return np.full(shape, math.prod(x.shape[a] for a in axes), np.intp)
    return np.asarray(np.sum(np.broadcast_to(mask, x.shape), axis=axes, dtype=np.intp))


def _squared(values: np.ndarray) -> np.ndarray:
    """|values|^2, real."""
    if values.dtype.kind == "c":
        return np.asarray(values.real ** 2 + values.imag ** 2)
    return np.asarray(values * values)


def _sums(requested: Any) -> Callable[[np.ndarray, tuple[int, ...], Any], Partial]:
    """mean's partial: (sum, count), the sum in numpy's accumulator dtype."""
    def local(x: np.ndarray, axes: tuple[int, ...], mask: Any) -> Partial:
        return (np.asarray(np.sum(x, axis=axes, dtype=_accumulator(x.dtype, requested), where=mask)),
                _count(x, axes, mask))
    return local


def _quotient(partial: Partial) -> np.ndarray:
    return np.asarray(np.true_divide(partial[0], partial[1]))


def _moments(requested: Any) -> Callable[[np.ndarray, tuple[int, ...], Any], Partial]:
    """var's partial: (count, mean, sum of squared deviations from it)."""
    def local(x: np.ndarray, axes: tuple[int, ...], mask: Any) -> Partial:
        count = _count(x, axes, mask)
        total = np.asarray(np.sum(x, axis=axes, dtype=_accumulator(x.dtype, requested), where=mask))
        mean = np.zeros_like(total)
        np.divide(total, count, out=mean, where=count > 0, casting="unsafe")
        deviations = _squared(x - np.expand_dims(mean, axes))
        return count, mean, np.asarray(np.sum(deviations, axis=axes, where=mask))
    return local


def _chan(a: Partial, b: Partial) -> Partial:
    """Two (count, mean, M2) partials as one (Chan, Golub and LeVeque)."""
    count_a, mean_a, m2_a = a
    count_b, mean_b, m2_b = b
    count = count_a + count_b
    share = np.zeros(count.shape)
    np.divide(count_b, count, out=share, where=count > 0)
    delta = mean_b - mean_a
    mean = (mean_a + delta * share.astype(m2_a.dtype)).astype(mean_a.dtype)
    m2 = (m2_a + m2_b + _squared(delta) * (count_a * share)).astype(m2_a.dtype)
    return count, mean, m2


def _variance(ddof: Any, root: bool) -> Callable[[Partial], np.ndarray]:
    def finish(partial: Partial) -> np.ndarray:
        count, _, m2 = partial
        variance = np.true_divide(m2, np.maximum(count - ddof, 0))
        return np.asarray(np.sqrt(variance) if root else variance)
    return finish


def _better(a: Partial, b: Partial, largest: bool) -> Partial:
    """Of two (value, global index) partials, elementwise, the one numpy's
    argmax (argmin) picks: the larger (smaller) value, NaN above all, the
    smaller index on ties."""
    value_a, index_a = a
    value_b, index_b = b
    if value_a.dtype.kind in "fc":
        nan_a, nan_b = np.isnan(value_a), np.isnan(value_b)
    else:
        nan_a = nan_b = np.zeros(value_a.shape, bool)
    wins = value_b > value_a if largest else value_b < value_a
    earlier = index_b < index_a
    take = np.where(nan_a | nan_b, nan_b & (~nan_a | earlier), wins | ((value_b == value_a) & earlier))
    return np.where(take, value_b, value_a), np.where(take, index_b, index_a)


def _arg(d: DistArray, function: Callable[..., Any], largest: bool) -> Reduction:
    """argmin/argmax: partials (value, global index) of the first extreme
    of the part (along the axis, or of the whole part in C order)."""
    held = d.layout.indices(d.world.pid)

    def local(x: np.ndarray, axes: tuple[int, ...], mask: Any) -> Partial:
        if len(axes) == x.ndim:
            place = np.unravel_index(function(x), x.shape)
            index = np.ravel_multi_index(tuple(h[p] for h, p in zip(held, place)), d.shape)
            return np.asarray(x[place]), np.asarray(index, np.intp)
        [axis] = axes
        at = function(x, axis=axis)
        values = np.take_along_axis(x, np.expand_dims(at, axis), axis=axis).squeeze(axis)
        return values, held[axis][at].astype(np.intp)

    return Reduction(local, functools.partial(_better, largest=largest), lambda partial: partial[1], True)


# -- the numpy functions ------------------------------------------------------------

def _additive(function: Callable[..., Any], ufunc: np.ufunc, a: DistArray, axis: Any, dtype: Any, out: Any,
              keepdims: Any, initial: Any, where: Any) -> Any:
    """sum, prod: partials in numpy's dtype, `initial` folded in once."""
    _no_out(function, out)
    finish = _first if initial is NoValue else (lambda partial: np.asarray(ufunc(partial[0], initial)))
    reduction = Reduction(_single(function, dtype=dtype), _pairwise(ufunc), finish)
    return reduce(a, function, reduction, axis, keepdims, _given(dtype=dtype, initial=initial), where)


@implements(np.sum)
def sum_(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = NoValue,
         initial: Any = NoValue, where: Any = NoValue) -> Any:
    """np.sum / d.sum: see the module's docstring for the result and cost."""
    return _additive(np.sum, np.add, a, axis, dtype, out, keepdims, initial, where)


@implements(np.prod)
def prod(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = NoValue,
         initial: Any = NoValue, where: Any = NoValue) -> Any:
    """np.prod / d.prod: see the module's docstring for the result and cost."""
    return _additive(np.prod, np.multiply, a, axis, dtype, out, keepdims, initial, where)


def _extreme(function: Callable[..., Any], ufunc: np.ufunc, a: DistArray, axis: Any, out: Any, keepdims: Any,
             initial: Any, where: Any) -> Any:
    _no_out(function, out)
    options = _given(initial=initial)
    reduction = Reduction(_single(function, **options), _pairwise(ufunc), _first, needs_data=not options)
    return reduce(a, function, reduction, axis, keepdims, options, where)


@implements(np.min, np.amin)
def min_(a: DistArray, axis: Any = None, out: Any = None, keepdims: Any = NoValue, initial: Any = NoValue,
         where: Any = NoValue) -> Any:
    """np.min / d.min: see the module's docstring.  ValueError (numpy's)
    when a reduced axis is empty and the result is not, unless `initial`."""
    return _extreme(np.min, np.minimum, a, axis, out, keepdims, initial, where)


@implements(np.max, np.amax)
def max_(a: DistArray, axis: Any = None, out: Any = None, keepdims: Any = NoValue, initial: Any = NoValue,
         where: Any = NoValue) -> Any:
    """np.max / d.max: as `min_`."""
    return _extreme(np.max, np.maximum, a, axis, out, keepdims, initial, where)


def _logical(function: Callable[..., Any], ufunc: np.ufunc, a: DistArray, axis: Any, out: Any, keepdims: Any,
             where: Any) -> Any:
    _no_out(function, out)
    return reduce(a, function, Reduction(_single(function), _pairwise(ufunc), _first), axis, keepdims, {}, where)


@implements(np.all)
def all_(a: DistArray, axis: Any = None, out: Any = None, keepdims: Any = NoValue, *, where: Any = NoValue) -> Any:
    """np.all / d.all: see the module's docstring (np.bool_ for axis=None)."""
    return _logical(np.all, np.logical_and, a, axis, out, keepdims, where)


@implements(np.any)
def any_(a: DistArray, axis: Any = None, out: Any = None, keepdims: Any = NoValue, *, where: Any = NoValue) -> Any:
    """np.any / d.any: see the module's docstring (np.bool_ for axis=None)."""
    return _logical(np.any, np.logical_or, a, axis, out, keepdims, where)


@implements(np.count_nonzero)
def count_nonzero(a: DistArray, axis: Any = None, *, keepdims: bool = False) -> Any:
    """np.count_nonzero: see the module's docstring (numpy's integer for axis=None)."""
    reduction = Reduction(_single(np.count_nonzero), _pairwise(np.add), _first)
    return reduce(a, np.count_nonzero, reduction, axis, keepdims, {})


@implements(np.mean)
def mean(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None, keepdims: Any = NoValue, *,
         where: Any = NoValue) -> Any:
    """np.mean / d.mean: (sum, count) partials, 2 words per element (see
    the module's docstring).  NaN, with numpy's warning, where nothing is
    averaged."""
    _no_out(np.mean, out)
    reduction = Reduction(_sums(dtype), _pairwise(np.add), _quotient)
    return reduce(a, np.mean, reduction, axis, keepdims, _given(dtype=dtype), where)


def _spread(function: Callable[..., Any], a: DistArray, axis: Any, dtype: Any, out: Any, ddof: Any,
            keepdims: Any, where: Any, mean: Any, correction: Any) -> Any:
    _no_out(function, out)
    if mean is not NoValue:
        raise TypeError(f"numpy.{function.__name__}'s mean= is not supported on bsp.DistArray")
    options = _given(dtype=dtype, ddof=ddof, correction=correction)
    offset = ddof if correction is NoValue else correction
    reduction = Reduction(_moments(dtype), _chan, _variance(offset, function is np.std))
    return reduce(a, function, reduction, axis, keepdims, options, where)


@implements(np.var)
def var(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = NoValue,
        *, where: Any = NoValue, mean: Any = NoValue, correction: Any = NoValue) -> Any:
    """np.var / d.var: (count, mean, M2) partials combined pairwise, 3
    words per element (see the module's docstring); divides by
    max(count - ddof, 0) as numpy."""
    return _spread(np.var, a, axis, dtype, out, ddof, keepdims, where, mean, correction)


@implements(np.std)
def std(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None, ddof: Any = 0, keepdims: Any = NoValue,
        *, where: Any = NoValue, mean: Any = NoValue, correction: Any = NoValue) -> Any:
    """np.std / d.std: the square root of `var`, same cost."""
    return _spread(np.std, a, axis, dtype, out, ddof, keepdims, where, mean, correction)


@implements(np.argmin)
def argmin(a: DistArray, axis: Any = None, out: Any = None, *, keepdims: Any = NoValue) -> Any:
    """np.argmin / d.argmin: the global index (flat, in C order, for
    axis=None) of the first smallest element; (value, index) partials, 2
    words per element (see the module's docstring).  ValueError (numpy's)
    for an empty reduction."""
    _no_out(np.argmin, out)
    return reduce(a, np.argmin, _arg(a, np.argmin, False), axis, keepdims, {})


@implements(np.argmax)
def argmax(a: DistArray, axis: Any = None, out: Any = None, *, keepdims: Any = NoValue) -> Any:
    """np.argmax / d.argmax: as `argmin`, of the first largest element."""
    _no_out(np.argmax, out)
    return reduce(a, np.argmax, _arg(a, np.argmax, True), axis, keepdims, {})


# -- ufunc methods ------------------------------------------------------------------

def _as(a: DistArray, dtype: Any) -> DistArray:
    return a if dtype is None else a.astype(dtype)


@implements_method(np.add, "reduce")
def add_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False,
               initial: Any = NoValue, where: Any = True) -> Any:
    """np.add.reduce: np.sum (axis 0 by default)."""
    return sum_(array, axis, dtype, out, keepdims, initial, where)


@implements_method(np.multiply, "reduce")
def multiply_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False,
                    initial: Any = NoValue, where: Any = True) -> Any:
    """np.multiply.reduce: np.prod (axis 0 by default)."""
    return prod(array, axis, dtype, out, keepdims, initial, where)


@implements_method(np.minimum, "reduce")
def minimum_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False,
                   initial: Any = NoValue, where: Any = True) -> Any:
    """np.minimum.reduce: np.min (axis 0 by default), in `dtype` if given."""
    return min_(_as(array, dtype), axis, out, keepdims, initial, where)


@implements_method(np.maximum, "reduce")
def maximum_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None, keepdims: bool = False,
                   initial: Any = NoValue, where: Any = True) -> Any:
    """np.maximum.reduce: np.max (axis 0 by default), in `dtype` if given."""
    return max_(_as(array, dtype), axis, out, keepdims, initial, where)


@implements_method(np.logical_and, "reduce")
def logical_and_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None,
                       keepdims: bool = False, where: Any = True) -> Any:
    """np.logical_and.reduce: np.all (axis 0 by default)."""
    return all_(_as(array, dtype), axis, out, keepdims, where=where)


@implements_method(np.logical_or, "reduce")
def logical_or_reduce(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None,
                      keepdims: bool = False, where: Any = True) -> Any:
    """np.logical_or.reduce: np.any (axis 0 by default)."""
    return any_(_as(array, dtype), axis, out, keepdims, where=where)


@implements_method(np.add, "accumulate")
def add_accumulate(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None) -> DistArray:
    """np.add.accumulate: np.cumsum (axis 0 by default)."""
    return cumsum(array, axis, dtype, out)


@implements_method(np.multiply, "accumulate")
def multiply_accumulate(array: DistArray, axis: Any = 0, dtype: Any = None, out: Any = None) -> DistArray:
    """np.multiply.accumulate: np.cumprod (axis 0 by default)."""
    return cumprod(array, axis, dtype, out)


# -- scans ----------------------------------------------------------------------------

@implements(np.cumsum)
def cumsum(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None) -> DistArray:
    """np.cumsum / d.cumsum: see the module's docstring for the layout and cost."""
    return _scan(np.cumsum, np.add, a, axis, dtype, out)


@implements(np.cumprod)
def cumprod(a: DistArray, axis: Any = None, dtype: Any = None, out: Any = None) -> DistArray:
    """np.cumprod / d.cumprod: see the module's docstring for the layout and cost."""
    return _scan(np.cumprod, np.multiply, a, axis, dtype, out)


def _scan(function: Callable[..., Any], ufunc: np.ufunc, a: DistArray, axis: Any, dtype: Any, out: Any
          ) -> DistArray:
    _no_out(function, out)
    _probe(function, a, **_given(axis=axis, dtype=dtype))
    if axis is None:
        a, axis = _flattened(a), 0
    axis = operator.index(axis) % a.ndim
    a = _block_along(a, axis)
    local = function(a.local, axis=axis, dtype=dtype)
    return DistArray._of(a.world, a.layout, a.distribution, _offset(a, axis, local, ufunc))


def _flattened(a: DistArray) -> DistArray:
    """a in C order as a one-dimensional "block" DistArray: np.ravel for
    more axes (bsp.arrays' reshape), then made regular blocks if need be
    (one superstep of kind `scan_to_block`)."""
    if a.ndim > 1:
        a = numpy_functions.call(np.ravel, (a,), {})
    layout, given = layout_of(a.shape, "block", None, a.world.nprocs)
    if a.layout == layout:
        return a
    local = remap.fetch(a.world.engine, superstep_kinds.SCAN_TO_BLOCK, a.layout, a.local, layout.indices)
    return DistArray._of(a.world, layout, given, local)


def _block_along(a: DistArray, axis: int) -> DistArray:
    """a with `axis` in contiguous parts in grid order: as it is if it
    already is, else redistributed to "block" along it (one superstep of
    kind `scan_to_block`)."""
    parts = [a.layout.held(axis, coord) for coord in range(a.grid[axis])]
    if np.array_equal(np.concatenate(parts), np.arange(a.shape[axis])):
        return a
    specs = tuple("block" if i == axis else spec for i, spec in enumerate(a.layout.specs))
    single = single_spec(a.distribution) is not None and axis == 0
    layout, given = layout_of(a.shape, "block" if single else specs, a.grid, a.world.nprocs)
    local = remap.fetch(a.world.engine, superstep_kinds.SCAN_TO_BLOCK, a.layout, a.local, layout.indices)
    return DistArray._of(a.world, layout, given, local)


def _offset(a: DistArray, axis: int, local: np.ndarray, ufunc: np.ufunc) -> np.ndarray:
    """This rank's scanned part combined with the totals of the parts
    before it along `axis` (one superstep of kind `scan`, if the axis is
    split): each rank sends its part's total to the later ranks of its grid
    line, and folds what it gets in grid order."""
    if a.grid[axis] == 1:
        return local
    layout, me = a.layout, a.world.pid
    mine = layout.coords_of(me)
    later = [pid for pid in range(a.world.nprocs)
             if (coords := layout.coords_of(pid))[axis] > mine[axis]
             and all(c == m for i, (c, m) in enumerate(zip(coords, mine)) if i != axis)]
    posts = [(later, np.take(local, [-1], axis=axis))] if later and local.shape[axis] else []
    totals = [total for _, total in collectives.superstep(a.world.engine, superstep_kinds.SCAN, posts)]
    if not totals:
        return local
    return np.asarray(ufunc(functools.reduce(ufunc, totals), local))
