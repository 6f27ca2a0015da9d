"""Creating DistArrays: numpy's constructors (zeros, ones, empty, full,
arange, linspace, eye, and the *_like functions), from an array that every
rank has, from each rank's own part; and the layouts of parts of given
sizes (`counts`, `balance`).

Each rank computes only its own part, from the global indices it holds,
with the operations numpy applies to each element, so the values are
numpy's, bit for bit, at every nprocs and layout.  Nothing here
communicates except `from_local` (one superstep: the parts' shapes) and
`balance` (one superstep: the elements that move).  Arguments are checked
identically on every rank before anything else, so a bad one raises the
same numpy exception on every rank.

The functions return a `Part` (the layout, the distribution as the
DistArray reports it, and this rank's local array), which DistArray's
classmethods wrap; np.zeros_like and its kin, registered with
bsp.arrays.numpy_functions, wrap theirs in the prototype's class.
"""

from __future__ import annotations

import math
import operator
from typing import Any, Callable, Iterable

import numpy as np

from bsp.arrays import remap, superstep_kinds
from bsp.arrays.distribution import Layout, is_block, layout_of, single_spec
from bsp.arrays.numpy_functions import implements
from bsp.objects import collectives
from bsp.world import World

Part = tuple[Layout, Any, np.ndarray]
"""A DistArray's layout, its distribution as given, and this rank's part."""

AxisError: type[Exception] = getattr(getattr(np, "exceptions", np), "AxisError")
ORDERS = ("C", "F", "A", "K", None)


# -- shapes and layouts -----------------------------------------------------------

def check_shape(shape: Any) -> tuple[int, ...]:
    """`shape`, an int or a sequence of ints as numpy takes it, as a tuple.
    Raises TypeError for anything else (a str among them; bools too, as
    numpy), ValueError for a negative length or no axis at all (a
    DistArray has at least one)."""
    if _integer(shape) is not None:
        entries: tuple[Any, ...] = (shape,)
    elif isinstance(shape, Iterable) and not isinstance(shape, (str, bytes)):
        entries = tuple(shape)
    else:
        raise TypeError(f"shape must be an int or a sequence of ints, not {type(shape).__name__}")
    values = tuple(_integer(n) for n in entries)
    for n, value in zip(entries, values):
        if value is None:
            raise TypeError(f"shape must be an int or a sequence of ints, not {shape!r}, which holds a "
                            f"{type(n).__name__}")
    if not values:
        raise ValueError("a DistArray has at least one axis, along which it is split: shape () is not one")
    lengths = tuple(int(n) for n in values if n is not None)
    if min(lengths) < 0:
        raise ValueError(f"negative dimensions are not allowed: shape {lengths}")
    return lengths


def _integer(value: Any) -> int | None:
    """`value` as an int if numpy takes it as one in a shape, else None."""
    if isinstance(value, (bool, np.bool_)):
        return None
    try:
        return operator.index(value)
    except TypeError:
        return None


def layout_for(world: World, shape: Any, distribution: Any, grid: Any) -> tuple[Layout, Any]:
    """The layout of an array of `shape` (checked) on the world's ranks."""
    return layout_of(check_shape(shape), distribution, grid, world.nprocs)


def counts(layout: Layout, axis: Any) -> tuple[int, ...]:
    """The part sizes along `axis` in grid order (one part, the whole
    length, on an axis that is not split).  Raises numpy's AxisError (a
    ValueError and an IndexError) for an axis out of range, TypeError for
    one that is not an int."""
    return layout.counts(_axis(axis, layout.ndim))


def _axis(axis: Any, ndim: int) -> int:
    index = _integer(axis)
    if index is None:
        raise TypeError(f"axis must be an int, not {type(axis).__name__}")
    if not -ndim <= index < ndim:
        raise AxisError(f"axis {index} is out of bounds for array of dimension {ndim}")
    return index % ndim


def balance(world: World, layout: Layout, given: Any, local: np.ndarray) -> Part:
    """The same array with regular "block" parts along every split axis,
    over the same grid.  One superstep (kind BALANCE) through
    remap.fetch, each element sent at most once, straight to its new
    owner: h = the elements that change owner (at most the part); none
    when the layout is balanced already (then a local copy)."""
    balanced: Any = "block" if single_spec(given) is not None else layout.balanced()
    target, target_given = layout_of(layout.shape, balanced, layout.grid, world.nprocs)
    if target == layout:
        return target, target_given, local.copy()
    moved = remap.fetch(world.engine, superstep_kinds.BALANCE, layout, local, target.indices)
    return target, target_given, moved


# -- filled arrays -------------------------------------------------------------------

def blank(make: Callable[..., np.ndarray], world: World, shape: Any, dtype: Any, distribution: Any,
          grid: Any) -> Part:
    """`make(part's shape, dtype)` on each rank: np.zeros or np.empty."""
    layout, given = layout_for(world, shape, distribution, grid)
    return layout, given, make(layout.local_shape(world.pid), dtype)


def full(world: World, shape: Any, fill_value: Any, dtype: Any, distribution: Any, grid: Any) -> Part:
    """np.full: `fill_value` (a scalar, or an array that broadcasts to
    `shape`), cast to `dtype` as numpy does (unsafely); dtype None:
    np.array(fill_value).dtype.  Raises what np.full raises (ValueError
    for a fill_value that does not broadcast, OverflowError, ...)."""
    layout, given = layout_for(world, shape, distribution, grid)
    if dtype is None:
        fill_value = np.asarray(fill_value)
        dtype = fill_value.dtype
    return filled(world, layout, given, fill_value, np.dtype(dtype))


def filled(world: World, layout: Layout, given: Any, fill: Any, dtype: np.dtype) -> Part:
    """This rank's part of `fill` broadcast to the layout's shape, as dtype."""
    whole = _broadcast_fill(fill, dtype, layout.shape)
    local = np.empty(layout.local_shape(world.pid), dtype)
    local[...] = whole[layout.block(world.pid)]
    return layout, given, local


def _broadcast_fill(fill: Any, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
    """`fill` cast to dtype (np.copyto's unsafe casting), as a read-only
    view of the global shape.  The whole fill is cast on every rank, so
    that a value the dtype cannot hold raises everywhere, even on a rank
    whose part is empty; into an empty array, numpy's copyto decides.""" 
    if math.prod(shape) == 0:
        np.copyto(np.empty(shape, dtype), fill, casting="unsafe")     # numpy's own check, on no elements
        return np.empty(shape, dtype)
    converted = np.empty(np.shape(fill), dtype)
    np.copyto(converted, fill, casting="unsafe")
    return np.broadcast_to(converted, shape)


def eye(world: World, n: Any, m: Any, k: Any, dtype: Any, distribution: Any, grid: Any) -> Part:
    """np.eye: ones where column - row == k.  TypeError for n, m or k not
    an int, ValueError for a negative n or m."""
    layout, given = layout_for(world, (n, n if m is None else m), distribution, grid)
    diagonal = _integer(k)
    if diagonal is None:
        raise TypeError(f"'{type(k).__name__}' object cannot be interpreted as an integer")
    rows, columns = layout.indices(world.pid)
    local = np.zeros(layout.local_shape(world.pid), dtype)
    local[np.subtract.outer(columns, rows).T == diagonal] = 1
    return layout, given, local


# -- ranges ---------------------------------------------------------------------------

def arange(world: World, start: Any, stop: Any, step: Any, dtype: Any, distribution: Any, grid: Any) -> Part:
    """np.arange: numpy's length, ceil((stop - start) / step) in Python's
    arithmetic on the arguments; numpy's dtype (the arguments' types
    promoted with the default int); numpy's values, which are not start +
    i*step but, as numpy's fill functions compute them, a[0] = start,
    a[1] = start + step (each cast to the dtype), then a[i] = a[0] + i *
    (a[1] - a[0]) in the dtype's arithmetic.  Raises what np.arange raises."""
    step = 1 if step is None else step
    dtype = _arange_dtype(start, stop, step) if dtype is None else np.dtype(dtype)
    if stop is None:
        start, stop = 0, start
    length = _arange_length(start, stop, step, dtype)
    if dtype.kind == "b" and length > 2:
        raise TypeError("arange() is only supported for booleans when the result has at most length 2.")
    if dtype.kind not in "biufc":
        raise TypeError(f"DistArray.arange supports numeric dtypes (bool, integer, float, complex), not {dtype}")
    layout, given = layout_for(world, length, distribution, grid)
    first = np.zeros(2, dtype)
    if length:
        following = start + step
        first[0] = _as_python(start, dtype.kind)
        if length > 1:
            first[1] = _as_python(following, dtype.kind)
    indices = layout.indices(world.pid)[0]
    return layout, given, _arange_values(first, indices)


def _as_python(value: Any, kind: str) -> Any:
    """A numpy scalar as the Python number it holds: numpy's arange stores
    its first two values by the dtype's setitem, which converts through
    Python numbers (so -1.0 into uint8 is an OverflowError), where
    assigning a numpy scalar into an array would cast it instead."""
    if isinstance(value, (np.generic, np.ndarray)) and np.ndim(value) == 0:
        # a numpy complex goes into a real dtype as numpy's int() or float() of it: its real part
        return value.item() if kind == "c" or not np.iscomplexobj(value) else value.real.item()
    return value


def _arange_dtype(*arguments: Any) -> np.dtype:
    """numpy's arange dtype: the arguments' types promoted, starting from
    the default int."""
    dtype = np.dtype(np.intp)
    for argument in arguments:
        if argument is not None:
            dtype = np.promote_types(dtype, np.array(argument).dtype)
    return dtype


def _arange_length(start: Any, stop: Any, step: Any, dtype: np.dtype) -> int:
    """numpy's _calc_length: for a complex dtype, a complex quotient gives
    the shorter of its parts; otherwise the quotient is taken as a float
    (which a Python complex is not: TypeError), and one that underflowed
    to zero from a nonzero difference counts 1 (0 if negative)."""
    difference = stop - start
    quotient = difference / step
    if isinstance(quotient, complex) and dtype.kind == "c":
        length = min(_ceil(quotient.real, start, stop, step, dtype), _ceil(quotient.imag, start, stop, step, dtype))
    else:
        value = float(quotient)
        if quotient == 0 and difference != 0:
            length = 0 if math.copysign(1.0, value) < 0 else 1
        else:
            length = _ceil(value, start, stop, step, dtype)
    return max(length, 0)


def _ceil(value: float, start: Any, stop: Any, step: Any, dtype: np.dtype) -> int:
    if not (math.isfinite(value) and -2.0 ** 63 <= value < 2.0 ** 63):
        np.arange(start, stop, step, dtype=dtype)       # numpy's own error, raised before it allocates
        raise ValueError(f"arange: cannot compute the length of arange({start}, {stop}, {step})")
    return math.ceil(value)


def _arange_values(first: np.ndarray, indices: np.ndarray) -> np.ndarray:
    """numpy's arange values at `indices`, from its first two (`first`),
    as numpy's fill function for the dtype computes them."""
    dtype = first.dtype
    if dtype.kind == "c":
        parts = np.empty(len(indices), dtype)
        parts.real = _arange_values(first.real.copy(), indices)
        parts.imag = _arange_values(first.imag.copy(), indices)
        return parts
    if dtype.kind == "b":
        chosen: np.ndarray = first[indices]
        return chosen
    # C computes start + i*delta with i an npy_intp: in int64 (uint64 for
    # uint64), in the float type itself, and for float16 in float32
    wide = np.dtype(np.uint64 if dtype == np.uint64 else np.int64) if dtype.kind in "iu" else dtype
    wide = np.dtype(np.float32) if dtype == np.float16 else wide
    start = first[:1].astype(wide)
    delta = (first[1:] - first[:1]).astype(wide) if dtype != np.float16 else first[1:].astype(wide) - start
    values: np.ndarray = (start + indices.astype(wide) * delta).astype(dtype)
    values[indices == 0] = first[0]
    values[indices == 1] = first[1]
    return values


def linspace(world: World, start: Any, stop: Any, num: Any, endpoint: bool, retstep: bool, dtype: Any,
             axis: Any, distribution: Any, grid: Any) -> tuple[Part, Any]:
    """np.linspace of scalar start and stop (a 1-D result), each element
    computed as numpy's function_base.linspace computes it (y = i * step
    + start, or i / div * delta + start where step underflows to 0; the
    last one stop itself when endpoint), so bit for bit numpy's.  Returns
    the part and the step (nan where numpy's is).  Raises numpy's errors:
    TypeError for num not an int, ValueError for num < 0, AxisError for
    an axis other than 0 (or -1); ValueError for start or stop that are
    not scalars (numpy's n-D linspace is not supported)."""
    count = _integer(num)
    if count is None:
        raise TypeError(f"'{type(num).__name__}' object cannot be interpreted as an integer")
    if count < 0:
        raise ValueError(f"Number of samples, {count}, must be non-negative.")
    _axis(axis, 1)
    if np.ndim(start) or np.ndim(stop):
        raise ValueError(f"DistArray.linspace takes scalar start and stop (a one-dimensional result), not "
                         f"arrays of shapes {np.shape(start)} and {np.shape(stop)}")
    computed = np.linspace(start, stop, num=0).dtype      # numpy's working dtype, from no samples
    dtype = computed if dtype is None else np.dtype(dtype)
    layout, given = layout_for(world, count, distribution, grid)
    indices = layout.indices(world.pid)[0]
    low, high = _as_numpy_takes(start, stop)
    div = count - 1 if endpoint else count
    delta = np.subtract(high, low, dtype=type(computed))
    y = indices.astype(computed)
    if div > 0:
        step = delta / div
        if step == 0:       # denormal steps, as numpy: gh-5437
            y /= div
            y *= delta
        else:
            y *= step
    else:
        step = np.nan
        y = y * delta
    y += low
    if endpoint and count > 1:
        y[indices == count - 1] = high
    if np.issubdtype(dtype, np.integer):
        np.floor(y, out=y)
    return (layout, given, y.astype(dtype, copy=False)), step


def _as_numpy_takes(start: Any, stop: Any) -> tuple[Any, Any]:
    """start and stop as np.linspace's array converter hands them on:
    Python scalars become arrays only when neither is a numpy object
    (otherwise they stay Python scalars, which numpy treats as weak)."""
    numpy_objects = (np.generic, np.ndarray)
    if isinstance(start, numpy_objects) or isinstance(stop, numpy_objects):
        return (np.asarray(start) if isinstance(start, numpy_objects) else start,
                np.asarray(stop) if isinstance(stop, numpy_objects) else stop)
    return np.asarray(start), np.asarray(stop)


# -- from arrays the ranks have ------------------------------------------------------

def from_array(world: World, array: Any, distribution: Any, grid: Any) -> Part:
    """Each rank keeps its own part (a copy) of `array`, which every rank
    has whole.  No communication.  ValueError for a 0-d array, or as
    layout_of."""
    whole = np.asarray(array)
    if whole.ndim == 0:
        raise ValueError("a DistArray has at least one axis, along which it is split: from_array needs an "
                         "array of at least one axis, not a 0-d one")
    layout, given = layout_of(whole.shape, distribution, grid, world.nprocs)
    return layout, given, np.array(whole[layout.block(world.pid)], copy=True, order="C")


def from_local(world: World, local: Any, axis: Any) -> Part:
    """The array whose parts along `axis` are the ranks' `local` arrays, in
    pid order (any sizes, 0 too); its distribution is ("block", sizes)
    along `axis` and None along the others, over a grid of nprocs along
    `axis`.  `local` is wrapped, not copied.  One superstep (kind
    FROM_LOCAL, an allgather of each part's shape and dtype: h = p - 1
    shapes).  Raises, on every rank alike, TypeError for an axis that is
    not an int, AxisError for one out of range, ValueError naming the
    ranks and shapes when the parts differ in ndim, in a length other
    than along `axis`, or in dtype."""
    part = np.asarray(local)
    if _integer(axis) is None:
        raise TypeError(f"axis must be an int, not {type(axis).__name__}")
    others = [pid for pid in range(world.nprocs) if pid != world.pid]
    posts = [(others, (part.shape, part.dtype))] if others else []
    arrived = dict(collectives.superstep(world.engine, superstep_kinds.FROM_LOCAL, posts))
    arrived[world.pid] = (part.shape, part.dtype)
    shapes = [arrived[pid][0] for pid in range(world.nprocs)]
    joined = _joined_axis(shapes, [arrived[pid][1] for pid in range(world.nprocs)], axis)
    sizes = tuple(shape[joined] for shape in shapes)
    shape = shapes[0][:joined] + (sum(sizes),) + shapes[0][joined + 1:]
    specs = tuple(("block", sizes) if a == joined else None for a in range(len(shape)))
    grid = tuple(world.nprocs if a == joined else 1 for a in range(len(shape)))
    layout, given = layout_of(shape, specs, grid, world.nprocs)
    return layout, given, part


def _joined_axis(shapes: list[tuple[int, ...]], dtypes: list[np.dtype], axis: Any) -> int:
    """`axis` of parts of these shapes and dtypes (rank by rank), checked."""
    first = shapes[0]
    for pid, (shape, dtype) in enumerate(zip(shapes, dtypes)):
        if len(shape) != len(first) or not shape:
            raise ValueError(f"from_local: the parts must have the same number of axes, at least one; rank 0's "
                             f"has shape {first}, rank {pid}'s {shape}")
        if dtype != dtypes[0]:
            raise ValueError(f"from_local: the parts must have the same dtype; rank 0's is {dtypes[0]}, "
                             f"rank {pid}'s {dtype}")
    joined = _axis(axis, len(first))
    for pid, shape in enumerate(shapes):
        if shape[:joined] + shape[joined + 1:] != first[:joined] + first[joined + 1:]:
            raise ValueError(f"from_local: the parts must agree on every axis but axis {joined}; rank 0's has "
                             f"shape {first}, rank {pid}'s {shape}")
    return joined


# -- numpy's *_like functions --------------------------------------------------------

@implements(np.empty_like)
def empty_like(prototype: Any, dtype: Any = None, order: Any = "K", subok: bool = True, shape: Any = None, *,
               device: Any = None) -> Any:
    """np.empty_like of a DistArray: its layout (see `_like` for another
    shape), its dtype unless given.  No communication."""
    return _blank_like(np.empty, prototype, dtype, order, shape, device)


@implements(np.zeros_like)
def zeros_like(a: Any, dtype: Any = None, order: Any = "K", subok: bool = True, shape: Any = None, *,
               device: Any = None) -> Any:
    """np.zeros_like of a DistArray, as empty_like.  No communication."""
    return _blank_like(np.zeros, a, dtype, order, shape, device)


@implements(np.ones_like)
def ones_like(a: Any, dtype: Any = None, order: Any = "K", subok: bool = True, shape: Any = None, *,
              device: Any = None) -> Any:
    """np.ones_like of a DistArray, as empty_like.  No communication."""
    return full_like(a, 1, dtype, order, subok, shape, device=device)


@implements(np.full_like)
def full_like(a: Any, fill_value: Any, dtype: Any = None, order: Any = "K", subok: bool = True,
              shape: Any = None, *, device: Any = None) -> Any:
    """np.full_like of a DistArray: `fill_value` cast (unsafely, as numpy)
    to the dtype, a's unless given; a's layout.  No communication.
    Raises as np.full."""
    layout, given = _like(a, shape, order, device)
    dtype = a.dtype if dtype is None else np.dtype(dtype)
    return type(a)._of(a.world, *filled(a.world, layout, given, fill_value, dtype))


def _blank_like(make: Callable[..., np.ndarray], prototype: Any, dtype: Any, order: Any, shape: Any,
                device: Any) -> Any:
    layout, given = _like(prototype, shape, order, device)
    dtype = prototype.dtype if dtype is None else np.dtype(dtype)
    return type(prototype)._of(prototype.world, layout, given, make(layout.local_shape(prototype.world.pid), dtype))


def _like(prototype: Any, shape: Any, order: Any, device: Any) -> tuple[Layout, Any]:
    """The layout of a *_like result: the prototype's; for another shape,
    its distribution with parts of given sizes made regular blocks (they
    cannot fit another length), over its grid if the number of axes is
    the same.  Raises numpy's ValueError for a bad order or device."""
    if order not in ORDERS:
        raise ValueError(f"order must be one of 'C', 'F', 'A', or 'K' (got {order!r})")
    if device not in (None, "cpu"):
        raise ValueError(f'Device not understood. Only "cpu" is allowed, but received: {device}')
    layout: Layout = prototype.layout
    if shape is None or check_shape(shape) == layout.shape:
        return layout, prototype.distribution
    shape = check_shape(shape)
    single = single_spec(prototype.distribution)
    if single is None and len(shape) != layout.ndim:
        return layout_of(shape, "block", None, layout.nprocs)
    distribution = _regular(single) if single is not None else tuple(map(_regular, layout.specs))
    return layout_of(shape, distribution, layout.grid if len(shape) == layout.ndim else None, layout.nprocs)


def _regular(spec: Any) -> Any:
    return "block" if is_block(spec) else spec
