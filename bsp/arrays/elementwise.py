"""Elementwise numpy on DistArrays: ufuncs (and so the operators), with
`out=` and `where=`; `astype`, `copy`, `np.where(cond, x, y)`, `isclose`,
`allclose`, `array_equal`, `array_equiv`.

Operands are scalars, ndarrays and DistArrays, broadcast by numpy's rules
against each other's GLOBAL shapes; shapes that do not broadcast are
numpy's ValueError, on every rank, naming the global shapes.  The result
takes the layout of the first DistArray operand, broadcast to the result's
shape (`broadcast_layout`), or that of the first DistArray in `out=`.  Each
rank then computes its own part of the result from its own slice of every
operand (`align`):

- a scalar (or 0-d array) is used as it is, so result dtypes are numpy's
  (NEP 50: a Python scalar takes the array's type);
- an ndarray is the same on every rank: each takes the slice matching its
  part, no communication;
- a DistArray that already holds, on every rank, what that rank's part
  needs (same layout, or an axis it holds whole) is used in place; any other
  is redistributed to the result's layout in one superstep of kind
  `elementwise` (bsp.arrays.remap.fetch), h = the elements of it whose owner
  changes, at most the largest part.

So an elementwise call costs no superstep when every DistArray operand
shares the result's layout, and one per DistArray operand (or `where=`
mask, or `out=` array) that does not; an `out=` array of another layout
costs one more (kind `elementwise out`) to write the result back into it.
"""

from __future__ import annotations

import math
import warnings
from functools import partial
from typing import Any, Callable, Iterable, NamedTuple, Sequence

import numpy as np

from bsp.arrays import remap, superstep_kinds
from bsp.arrays.distarray import DistArray
from bsp.arrays.distribution import Layout, as_index, block_of, layout_of, single_spec
from bsp.arrays.numpy_functions import implements

METHODS: dict[tuple[np.ufunc, str], Callable[..., Any]] = {}
"""(ufunc, method) -> its implementation on DistArrays, for ufunc methods
other than __call__ (`np.add.reduce`, ...): filled by bsp.arrays.reductions."""


def implements_method(ufunc: np.ufunc, method: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Register the decorated function as `ufunc.method` on DistArrays
    (called with the arguments numpy's method takes)."""
    def register(function: Callable[..., Any]) -> Callable[..., Any]:
        METHODS[(ufunc, method)] = function
        return function
    return register


# -- shapes and layouts ---------------------------------------------------------

def global_shape(operand: Any) -> tuple[int, ...]:
    """The global shape of a DistArray, the shape of anything else."""
    return operand.shape if isinstance(operand, DistArray) else np.shape(operand)


def numpy_shape(shape: Sequence[int]) -> str:
    """A shape as numpy's messages write it: (2,3), (6,), ()."""
    return "(" + ",".join(str(n) for n in shape) + ("," if len(shape) == 1 else "") + ")"


def broadcast_shape(shapes: Sequence[tuple[int, ...]]) -> tuple[int, ...]:
    """numpy's broadcast of the global `shapes`; ValueError with numpy's
    message (the global shapes) when they do not broadcast."""
    try:
        return tuple(np.broadcast_shapes(*shapes))
    except ValueError:
        raise ValueError("operands could not be broadcast together with shapes "
                         + " ".join(numpy_shape(shape) for shape in shapes) + " ") from None


def regular(spec: Any) -> Any:
    """A spec that holds on any grid extent: ("block", sizes) becomes "block"."""
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "block":
        return "block"
    return spec


def regrid(shape: tuple[int, ...], specs: Sequence[Any], grid: Sequence[int], nprocs: int,
           single: Any = None) -> tuple[Layout, Any]:
    """The layout of `shape` under `specs` on `grid` when the grid still
    holds every rank, else under the same kinds of split (uneven blocks made
    regular) on the default grid over the split axes, or replicated when no
    axis is split.  `single`: a one-dimensional API spec to report as the
    distribution when the layout keeps it."""
    if math.prod(grid) == nprocs:
        if single is not None and tuple(specs) == (single,) + (None,) * (len(shape) - 1):
            return layout_of(shape, single, tuple(grid), nprocs)
        return layout_of(shape, tuple(specs), tuple(grid), nprocs)
    return layout_of(shape, tuple(regular(spec) for spec in specs), None, nprocs)


def broadcast_layout(first: DistArray, shape: tuple[int, ...]) -> tuple[Layout, Any]:
    """The layout of an elementwise result of `shape` whose first DistArray
    operand is `first`: first's layout where its axes have the result's
    length; axes it lacks, or has as length 1, not split."""
    if shape == first.shape:
        return first.layout, first.distribution
    lead = len(shape) - first.ndim
    same = [n == m for n, m in zip(first.shape, shape[lead:])]
    specs = (None,) * lead + tuple(spec if keep else None for spec, keep in zip(first.layout.specs, same))
    grid = (1,) * lead + tuple(extent if keep else 1 for extent, keep in zip(first.grid, same))
    single = single_spec(first.distribution) if lead == 0 else None
    return regrid(shape, specs, grid, first.world.nprocs, single)


def wanted(layout: Layout, shape: tuple[int, ...], operand_shape: tuple[int, ...], pid: int
           ) -> list[np.ndarray]:
    """Per axis of an operand of `operand_shape` broadcast to `shape`, the
    global indices of it that rank `pid`'s part of the result under
    `layout` needs: the part's own along axes of the result's length, index
    0 (once, if the part is not empty) along axes of length 1."""
    part = layout.indices(pid)[len(shape) - len(operand_shape):]
    return [held if n == m else held[:1] * 0
            for held, n, m in zip(part, operand_shape, shape[len(shape) - len(operand_shape):])]


def _positions(operand: DistArray, pid: int, want: Sequence[np.ndarray]) -> list[Any] | None:
    """Where `want` lies in rank pid's part of `operand`, per axis (an axis
    it holds whole: at `want` itself; else only if it holds exactly `want`),
    or None if it does not hold all of it."""
    positions: list[Any] = []
    for held, indices, n in zip(operand.layout.indices(pid), want, operand.shape):
        if len(held) == n:
            positions.append(as_index(indices))
        elif np.array_equal(held, indices):
            positions.append(slice(None))
        else:
            return None
    return positions


def localize(operand: Any, layout: Layout, shape: tuple[int, ...], pid: int,
             kind: int = superstep_kinds.ELEMENTWISE) -> Any:
    """This rank's (`pid`'s) slice of `operand` for its part of a result of
    `shape` under `layout` (axes of length 1 kept as length 1, or 0 where
    the part is empty): scalars and 0-d arrays as they are, an ndarray
    sliced, a DistArray in place or fetched in one superstep of `kind` (see
    the module's docstring).  Collective when `operand` is a DistArray."""
    if not isinstance(operand, (DistArray, np.ndarray)) or operand.ndim == 0:
        return operand
    if isinstance(operand, np.ndarray):
        return operand[block_of([as_index(indices) for indices in wanted(layout, shape, operand.shape, pid)])]
    world = operand.world
    want = partial(wanted, layout, shape, operand.shape)
    if all(_positions(operand, rank, want(rank)) is not None for rank in range(world.nprocs)):
        mine = _positions(operand, pid, want(pid))
        assert mine is not None
        return operand.local[block_of(mine)]
    return remap.fetch(world.engine, kind, operand.layout, operand.local, want)


class Aligned(NamedTuple):
    """Operands made local for a result of `shape` under `layout`."""

    world: Any
    layout: Layout
    distribution: Any
    shape: tuple[int, ...]
    locals: list[Any]

    def wrap(self, local: np.ndarray) -> DistArray:
        """This rank's part of a result, as the DistArray."""
        return DistArray._of(self.world, self.layout, self.distribution, local)


def first_distarray(operands: Iterable[Any]) -> DistArray:
    return next(operand for operand in operands if isinstance(operand, DistArray))


def as_operand(value: Any) -> Any:
    """A DistArray, ndarray or scalar as it is; anything else (a list) as numpy reads it."""
    if isinstance(value, (DistArray, np.ndarray, np.generic, int, float, complex, bool)):
        return value
    return np.asarray(value)


def align(operands: Sequence[Any], extra_shapes: Sequence[tuple[int, ...]] = (),
          target: DistArray | None = None) -> Aligned:
    """Broadcast `operands` (at least one a DistArray) by their global
    shapes (with `extra_shapes`, those of out= arrays, which must be the
    result's), and take each one's slice for this rank's part of the result,
    under `target`'s layout if given, else the first DistArray operand's
    broadcast (`broadcast_layout`).  ValueError as numpy's when the shapes
    do not broadcast.  One superstep per DistArray operand that must move."""
    operands = [as_operand(operand) for operand in operands]
    shape = broadcast_shape([global_shape(operand) for operand in operands] + list(extra_shapes))
    for extra in extra_shapes:
        if tuple(extra) != shape:
            raise ValueError(f"non-broadcastable output operand with shape {numpy_shape(extra)} doesn't match "
                             f"the broadcast shape {numpy_shape(shape)}")
    source = target if target is not None else first_distarray(operands)
    if target is not None:
        layout, distribution = target.layout, target.distribution
    else:
        layout, distribution = broadcast_layout(source, shape)
    locals_ = [localize(operand, layout, shape, source.world.pid) for operand in operands]
    return Aligned(source.world, layout, distribution, shape, locals_)


# -- ufuncs -----------------------------------------------------------------------

@implements(np.ufunc)
def array_ufunc(ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
    """numpy's `__array_ufunc__` on DistArrays (registered under np.ufunc
    itself: DistArray.__array_ufunc__ passes (ufunc, method, *inputs)).
    `ufunc(...)` itself: see `call_ufunc`; `reduce` and `accumulate` of the
    ufuncs that bsp.arrays.reductions names (np.add.reduce is np.sum, ...);
    any other method, and generalized ufuncs (a signature) other than
    np.matmul, raise TypeError naming them."""
    name = f"numpy.{ufunc.__name__}"
    if method != "__call__":
        implementation = METHODS.get((ufunc, method))
        if implementation is None:
            raise TypeError(f"{name}.{method} is not supported on bsp.DistArray; for numpy on the whole array "
                            "use d.allgather(), for this rank's part d.local")
        return implementation(*inputs, **kwargs)
    if ufunc.signature is not None:
        raise TypeError(f"{name} (a generalized ufunc, signature {ufunc.signature!r}) is not supported on "
                        "bsp.DistArray; for numpy on the whole array use d.allgather(), for this rank's part d.local")
    return call_ufunc(ufunc, inputs, kwargs)


def call_ufunc(ufunc: np.ufunc, inputs: Sequence[Any], kwargs: dict[str, Any]) -> Any:
    """`ufunc(*inputs, **kwargs)` on scalars, ndarrays and DistArrays, with
    numpy's broadcasting of the global shapes and numpy's result dtypes.
    `out=` takes DistArrays (or None) of the result's shape, and the
    result is computed in the first one's layout; `where=` a scalar, an
    ndarray or a DistArray.  Other keywords (dtype, casting, ...) go to
    numpy as they are.  Costs: see the module's docstring.  Raises numpy's
    ValueError when the shapes do not broadcast, TypeError for an out= that
    is not a DistArray, and numpy's own errors (casting, dtypes) on every rank."""
    outs = _outs(kwargs.pop("out", None), ufunc.nout)
    given = [out for out in outs if out is not None]
    where = kwargs.pop("where", True)
    masked = where is not True
    where = as_operand(where) if masked else where
    inputs = [as_operand(operand) for operand in inputs]
    _check_types(ufunc, inputs, outs, where if masked else None, kwargs)
    operands = [*inputs, *([where] if masked else []), *given]
    aligned = align(operands, [out.shape for out in given], given[0] if given else None)
    local_inputs = aligned.locals[:len(inputs)]
    if masked:
        kwargs["where"] = aligned.locals[len(inputs)]
    places = iter(aligned.locals[len(operands) - len(given):])
    if given:
        kwargs["out"] = tuple(None if out is None else next(places) for out in outs)
    results = ufunc(*local_inputs, **kwargs)
    results = results if isinstance(results, tuple) else (results,)
    answers = [_deliver(aligned, out, local) for out, local in zip(outs, results)]
    return tuple(answers) if ufunc.nout > 1 else answers[0]


def _stand_in(operand: Any) -> Any:
    """An empty array of the operand's dtype, or the scalar itself."""
    if isinstance(operand, (DistArray, np.ndarray)) and operand.ndim:
        return np.empty((0,), operand.dtype)
    return operand


def _check_types(ufunc: np.ufunc, inputs: Sequence[Any], outs: Sequence[DistArray | None], where: Any,
                 kwargs: dict[str, Any]) -> None:
    """numpy's own errors for the operands' types (no loop for them, a
    cast out= forbids, ...), raised on every rank before the shapes are
    compared, as numpy orders them: `ufunc` on empty stand-ins."""
    extra = dict(kwargs)
    if any(out is not None for out in outs):
        extra["out"] = tuple(None if out is None else _stand_in(out) for out in outs)
    if where is not None:
        extra["where"] = _stand_in(where)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ufunc(*[_stand_in(operand) for operand in inputs], **extra)


def _outs(out: Any, nout: int) -> tuple[DistArray | None, ...]:
    if out is None:
        return (None,) * nout
    out = out if isinstance(out, tuple) else (out,)
    for array in out:
        if array is not None and not isinstance(array, DistArray):
            raise TypeError(f"out= of an operation on bsp.DistArray must be a DistArray (or None), not "
                            f"{type(array).__name__}: the result is distributed")
    return tuple(out)


def _deliver(aligned: Aligned, out: DistArray | None, local: np.ndarray) -> DistArray:
    """The result for one output: a new DistArray, or `out` itself, into
    which `local` (its part under the result's layout) has been written
    (in place when it has that layout, else sent back to its own)."""
    if out is None:
        return aligned.wrap(local)
    if out.layout != aligned.layout:
        out.local[...] = remap.fetch(aligned.world.engine, superstep_kinds.ELEMENTWISE_OUT, aligned.layout,
                                     local, out.layout.indices)
    return out


# -- what it is, casts, copies, selections and comparisons -----------------------

@implements(np.shape)
def shape(a: DistArray) -> tuple[int, ...]:
    """np.shape(d): the global shape.  No communication."""
    return a.shape


@implements(np.ndim)
def ndim(a: DistArray) -> int:
    """np.ndim(d): the number of axes.  No communication."""
    return a.ndim


@implements(np.size)
def size(a: DistArray, axis: int | None = None) -> int:
    """np.size(d, axis=None): the global number of elements (along `axis`).
    No communication."""
    return a.size if axis is None else a.shape[axis]


if hasattr(np, "astype"):
    @implements(np.astype)
    def astype(x: DistArray, dtype: Any, /, *, copy: bool = True, device: Any = None) -> DistArray:
        """np.astype(d, dtype): d.astype(dtype, copy=copy).  No communication."""
        if device not in (None, "cpu"):
            raise ValueError(f"device {device!r} is not supported: a DistArray's parts are numpy arrays")
        return x.astype(dtype, copy=copy)


@implements(np.copy)
def copy(a: DistArray, order: str = "K", subok: bool = False) -> DistArray:
    """np.copy(d): d.copy().  No communication."""
    return a.copy()


_MISSING = object()


@implements(np.where)
def where(condition: Any, x: Any = _MISSING, y: Any = _MISSING, /) -> DistArray:
    """np.where(condition, x, y): x where condition, else y, broadcast
    together (see `align` for the layout and the cost).  The one-argument
    form (nonzero) raises TypeError; one of x and y without the other,
    ValueError as numpy."""
    if x is _MISSING and y is _MISSING:
        raise TypeError("numpy.where(condition) (the indices of the nonzero elements) is not supported on "
                        "bsp.DistArray; use numpy.where(condition, x, y)")
    if x is _MISSING or y is _MISSING:
        raise ValueError("either both or neither of x and y should be given")
    aligned = align([condition, x, y])
    return aligned.wrap(np.where(*aligned.locals))


@implements(np.isclose)
def isclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> DistArray:
    """np.isclose, elementwise (rtol and atol broadcast as operands too);
    cost as `align`."""
    aligned = align([a, b, rtol, atol])
    local_a, local_b, local_rtol, local_atol = aligned.locals
    return aligned.wrap(np.isclose(local_a, local_b, local_rtol, local_atol, equal_nan))


@implements(np.allclose)
def allclose(a: Any, b: Any, rtol: Any = 1e-05, atol: Any = 1e-08, equal_nan: bool = False) -> bool:
    """np.allclose: a Python bool on every rank.  `isclose`, then one
    superstep (the all), h = p-1 words."""
    return bool(isclose(a, b, rtol, atol, equal_nan).all())


@implements(np.array_equal)
def array_equal(a1: Any, a2: Any, equal_nan: bool = False) -> bool:
    """np.array_equal: False (no communication) unless the global shapes
    are equal; else whether every element is (NaNs equal to NaNs with
    equal_nan).  A Python bool on every rank; `align`, then one superstep."""
    if global_shape(as_operand(a1)) != global_shape(as_operand(a2)):
        return False
    return _all_equal(a1, a2, equal_nan)


@implements(np.array_equiv)
def array_equiv(a1: Any, a2: Any) -> bool:
    """np.array_equiv: False (no communication) unless the global shapes
    broadcast; else whether every element of the broadcast is equal.  A
    Python bool on every rank; `align`, then one superstep."""
    try:
        np.broadcast_shapes(global_shape(as_operand(a1)), global_shape(as_operand(a2)))
    except ValueError:
        return False
    return _all_equal(a1, a2, False)


def _all_equal(a1: Any, a2: Any, equal_nan: bool) -> bool:
    aligned = align([a1, a2])
    left, right = aligned.locals
    equal = np.equal(left, right)
    if equal_nan and all(np.result_type(operand).kind in "fc" for operand in (left, right)):
        equal = equal | (np.isnan(left) & np.isnan(right))
    return bool(aligned.wrap(equal).all())
