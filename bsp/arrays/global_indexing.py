"""`d[key]` and `d[key] = value` with GLOBAL indices, by numpy's rules
(DESIGN.md §2.2), and the moving primitives that they and bsp.arrays.shape
share.

numpy itself checks every key, on every rank alike, against a zero-byte
*shadow* of the global shape (an array of itemsize 0): the exception types,
messages and result shapes are numpy's, with the global shape in them.

Result layouts:
- Basic keys (ints, slices of any step, Ellipsis, None) move no data where
  the selected elements can stay where they are: an axis taken whole keeps
  its distribution; a sliced axis whose selected elements lie, in the
  result's order, on non-decreasing grid coordinates (any slice of a block
  axis with a positive step; of a cyclic axis, slices that fall on one
  coordinate) becomes a ("block", sizes) axis of what each coordinate
  holds; a cyclic axis sliced from a multiple of its period with step 1
  stays cyclic; an axis on one grid coordinate keeps its kind; an axis
  that an int removes folds its grid extent into its kept neighbour (which
  then holds its elements on the removed axis's owning coordinate only).
  Other slices (a cyclic axis sliced with a step, a block axis reversed
  across coordinates) give a "block" split along axis 0, in one superstep
  of remap.
- Integer-array and boolean selections give a "block" split along axis 0
  (one superstep: every rank works out, from the key that every rank
  holds, which elements every result part needs, and each owner sends
  them).  A DistArray mask gives a ("block", sizes) split along axis 0 of
  the selected elements in C order (one or two supersteps).
- A 0-d result is a numpy scalar on every rank (one superstep: a
  broadcast from the element's owner).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import numpy as np

from bsp.arrays import remap, superstep_kinds
from bsp.arrays.distarray import DistArray
from bsp.arrays.distribution import Layout, is_block, layout_of
from bsp.core.engine import Engine
from bsp.objects import collectives

Coords = tuple[np.ndarray, ...]
Source = tuple[Layout, np.ndarray]


# -- index arithmetic -------------------------------------------------------------

def shadow(shape: tuple[int, ...]) -> np.ndarray:
    """A zero-byte array of `shape`: numpy checks keys, reshapes and axes
    against it, with its own exceptions and the global shape in them."""
    return np.empty(shape, dtype=[])


def owners(layout: Layout, coords: Coords) -> np.ndarray:
    """The rank that holds each element at global `coords` (one index
    array per axis, all of one shape)."""
    along = tuple(np.asarray(axis.owner(c), dtype=np.int64) for axis, c in zip(layout.axes, coords))
    ranks: np.ndarray = np.ravel_multi_index(along, layout.grid).astype(np.int64)
    return ranks


def positions(layout: Layout, coords: Coords) -> Coords:
    """Where each element at global `coords` sits in its owner's part."""
    return tuple(axis.position(c) for axis, c in zip(layout.axes, coords))


def c_strides(shape: Sequence[int]) -> list[int]:
    """The flat C-order stride of each axis, in elements."""
    return [math.prod(shape[axis + 1:]) for axis in range(len(shape))]


def flat_index(coords: Coords, shape: Sequence[int]) -> np.ndarray:
    """The flat C-order index in `shape` of the elements at `coords`
    (broadcast together, as from np.ix_)."""
    total: np.ndarray = np.zeros((), np.int64)
    for c, stride in zip(coords, c_strides(shape)):
        total = total + np.asarray(c, np.int64) * stride
    return total


def selection_coords(shape: tuple[int, ...], key: Any) -> Coords:
    """Per axis of a `shape` array, the global index of every element that
    numpy's `array[key]` selects, in the selection's shape: numpy's own
    rules (advanced axes' placement, masks, broadcasting) applied to index
    grids.  O(selection) memory for an advanced key, none for a basic one."""
    grids = []
    for axis, n in enumerate(shape):
        line = np.arange(n, dtype=np.int64).reshape([-1 if a == axis else 1 for a in range(len(shape))])
        grids.append(np.broadcast_to(line, shape)[key])
    return tuple(grids)


# -- moving elements -----------------------------------------------------------

def transfer(engine: Engine, kind: int, layout: Layout, local: np.ndarray, coords: Coords,
             dests: np.ndarray) -> list[tuple[np.ndarray, np.ndarray]]:
    """Send element i of a list (global `coords[axis][i]` of the array whose
    part here is `local`, under `layout`) to rank `dests[i]`.  Every rank
    calls it with the same list.  Returns, on each rank, (ids, values) per
    sender: the list positions, increasing, of what it received, and their
    values.  One superstep ending as `kind`; each listed element travels
    once, from its owner (from a replicated layout, each rank reads its own
    copy), so h is the most list elements a rank sends or receives."""
    me, nprocs = engine.pid, engine.nprocs
    holders = dests if layout.replicated else owners(layout, coords)
    pairs = holders * nprocs + dests
    order = np.argsort(pairs, kind="stable")
    starts = np.searchsorted(pairs[order], np.arange(nprocs * nprocs + 1))

    def chosen(source: int, dest: int) -> np.ndarray:
        pair = source * nprocs + dest
        return order[starts[pair]:starts[pair + 1]]

    def values(ids: np.ndarray) -> np.ndarray:
        return np.asarray(local[positions(layout, tuple(c[ids] for c in coords))])

    posts = [((dest,), values(chosen(me, dest))) for dest in range(nprocs)
             if dest != me and len(chosen(me, dest))]
    arrived = collectives.superstep(engine, kind, posts)
    mine = chosen(me, me)
    return [(mine, values(mine)), *((chosen(source, me), got) for source, got in arrived)]


@dataclass(frozen=True)
class Stream:
    """Arrays that together fill a target array's flat C order:
    `place(k, coords)` is the target flat index of source k's elements at
    global `coords` (np.ix_ arrays); `which(flat)` the source of each
    target flat index, and `locate(k, flat)` the global coordinates in
    source k of target flat indices it fills."""

    sources: Sequence[Source]
    place: Callable[[int, Coords], np.ndarray]
    which: Callable[[np.ndarray], np.ndarray]
    locate: Callable[[int, np.ndarray], Coords]
    dtype: np.dtype


def regroup(engine: Engine, kind: int, streams: Sequence[Stream], bounds: np.ndarray) -> list[np.ndarray]:
    """For each stream, this rank's range bounds[pid]:bounds[pid+1] of its
    target's flat C order (bounds: nprocs + 1 increasing flat indices).
    Collective.  One superstep ending as `kind`; each element travels once,
    from its owner, in one message per pair of ranks (a replicated source
    is read where it is), so h is the most elements a rank sends or
    receives: at most its parts, or its range."""
    me, nprocs = engine.pid, engine.nprocs
    outgoing = [_outgoing(me, nprocs, stream, bounds) for stream in streams]
    posts = [((dest,), tuple(parts[dest] for parts in outgoing)) for dest in range(nprocs)
             if dest != me and any(len(parts[dest]) for parts in outgoing)]
    arrived = collectives.superstep(engine, kind, posts)
    return [_incoming(me, stream, bounds, outgoing[s][me], [(source, got[s]) for source, got in arrived])
            for s, stream in enumerate(streams)]


def _outgoing(me: int, nprocs: int, stream: Stream, bounds: np.ndarray) -> list[np.ndarray]:
    """Per rank, what this rank holds of its range, in flat order."""
    keys, values = [np.empty(0, np.int64)], [np.empty(0, stream.dtype)]
    for k, (layout, local) in enumerate(stream.sources):
        if not layout.replicated:
            flat = stream.place(k, np.ix_(*layout.indices(me)))
            keys.append(np.broadcast_to(flat, local.shape).ravel())
            values.append(local.ravel())
    key, value = np.concatenate(keys), np.concatenate(values).astype(stream.dtype, copy=False)
    dests = np.searchsorted(bounds, key, side="right") - 1
    order = np.lexsort((key, dests))
    cuts = np.concatenate(([0], np.cumsum(np.bincount(dests, minlength=nprocs))))
    ordered = value[order]
    return [ordered[cuts[dest]:cuts[dest + 1]] for dest in range(nprocs)]


def _incoming(me: int, stream: Stream, bounds: np.ndarray, own: np.ndarray,
              arrived: list[tuple[int, np.ndarray]]) -> np.ndarray:
    flat = np.arange(bounds[me], bounds[me + 1], dtype=np.int64)
    ids = stream.which(flat)
    sender = np.full(len(flat), -1, np.int64)
    result = np.empty(len(flat), stream.dtype)
    for k, (layout, local) in enumerate(stream.sources):
        chosen = ids == k
        at = stream.locate(k, flat[chosen])
        if layout.replicated:
            result[chosen] = local[at]
        else:
            sender[chosen] = owners(layout, at)
    for source, values in [(me, own), *arrived]:
        result[sender == source] = values
    return result


def flat_stream(array: DistArray, dtype: Any = None) -> Stream:
    """`array` in its own flat C order."""
    shape = array.shape
    return Stream([(array.layout, array.local)], lambda k, coords: flat_index(coords, shape),
                  lambda flat: np.zeros(len(flat), np.int64), lambda k, flat: np.unravel_index(flat, shape),
                  np.dtype(array.dtype if dtype is None else dtype))


def row_bounds(layout: Layout) -> np.ndarray:
    """The flat ranges of the ranks' parts of a layout split along axis 0
    only, in blocks ("block" rows): nprocs + 1 flat indices."""
    rowsize = math.prod(layout.shape[1:])
    return np.asarray(layout.axes[0].starts, np.int64) * rowsize


def read_element(d: DistArray, index: Sequence[int], kind: int = superstep_kinds.ELEMENT) -> Any:
    """The element at global `index` (non-negative ints, one per axis) as a
    numpy scalar on every rank.  One superstep ending as `kind`: a
    broadcast from its owner, h = (p-1) words there."""
    world, layout = d.world, d.layout
    at = tuple(np.asarray([i], np.int64) for i in index)
    owner = 0 if layout.replicated else int(owners(layout, at)[0])
    value = None
    if layout.replicated or world.pid == owner:
        value = d.local[tuple(int(p[0]) for p in positions(layout, at))]
    others = [pid for pid in range(world.nprocs) if pid != owner]
    posts = [(others, value)] if others and world.pid == owner and not layout.replicated else []
    arrived = collectives.superstep(world.engine, kind, posts, owner)
    return value if value is not None else arrived[0][1]


# -- keys ---------------------------------------------------------------------

@dataclass(frozen=True)
class Basic:
    """A basic key against a shape: per axis of the array, the selected
    global indices in the result's order (an array), or an int (the axis
    dropped); per result axis, its source axis, or None for a new axis."""

    picks: tuple[np.ndarray | int, ...]
    result_axes: tuple[int | None, ...]


def _is_int(item: Any) -> bool:
    return isinstance(item, (int, np.integer)) and not isinstance(item, (bool, np.bool_))


def key_items(key: Any) -> tuple[Any, ...]:
    """`key` as numpy's tuple of index items (a list is one index array);
    0-d integer arrays become ints, as numpy reads them.  Raises
    IndexError for a DistArray inside a key."""
    items = key if isinstance(key, tuple) else (key,)
    out = []
    for item in items:
        if isinstance(item, DistArray):
            raise IndexError(f"a DistArray index must be the whole key (a boolean mask of the array's shape), "
                             f"not part of {type(key).__name__} key")
        if isinstance(item, np.ndarray) and item.ndim == 0 and item.dtype.kind in "iu":
            item = int(item)
        out.append(item)
    return tuple(out)


def is_basic(items: tuple[Any, ...]) -> bool:
    return all(item is None or item is Ellipsis or isinstance(item, slice) or _is_int(item) for item in items)


def parse_basic(shape: tuple[int, ...], items: tuple[Any, ...]) -> Basic:
    """A basic key that numpy has accepted for `shape`, resolved."""
    used = sum(1 for item in items if item is not None and item is not Ellipsis)
    fill = [slice(None)] * (len(shape) - used)
    expanded: list[Any] = []
    for item in items:
        expanded.extend(fill if item is Ellipsis else [item])
    if not any(item is Ellipsis for item in items):
        expanded.extend(fill)
    picks: list[np.ndarray | int] = []
    result_axes: list[int | None] = []
    for item in expanded:
        if item is None:
            result_axes.append(None)
            continue
        axis, n = len(picks), shape[len(picks)]
        if isinstance(item, slice):
            picks.append(np.arange(*item.indices(n), dtype=np.int64))
            result_axes.append(axis)
        else:
            picks.append(int(item) % n)
    return Basic(tuple(picks), tuple(result_axes))


def selection_shape(shape: tuple[int, ...], items: tuple[Any, ...]) -> tuple[int, ...]:
    """numpy's shape of `array[items]`, raising numpy's IndexError (or
    other) on every rank alike."""
    result: tuple[int, ...] = np.shape(shadow(shape)[items])
    return result


def mine(layout: Layout, basic: Basic, pid: int) -> tuple[list[np.ndarray], list[np.ndarray]] | None:
    """Of a basic selection, what rank `pid` holds: per source axis, local
    positions; per result axis, the result indices they fill (both
    increasing in the result's order).  None if it holds none of an axis
    an int removes."""
    coords = layout.coords_of(pid)
    local: list[np.ndarray] = []
    kept: dict[int, np.ndarray] = {}
    for axis, pick in enumerate(basic.picks):
        line = layout.axes[axis]
        picked = np.atleast_1d(np.asarray(pick, np.int64))
        held = line.owner(picked) == coords[axis]
        if isinstance(pick, int) and not held.all():
            return None
        local.append(line.position(picked[held]))
        kept[axis] = np.flatnonzero(held)
    results = [np.zeros(1, np.int64) if axis is None else kept[axis] for axis in basic.result_axes]
    return local, results


# -- d[key] --------------------------------------------------------------------

def getitem(d: DistArray, key: Any, kind: int = superstep_kinds.GETITEM) -> Any:
    """numpy's `d[key]`, with global indices (see the module's docstring for
    the result's layout).  Basic keys: no superstep where no element must
    move, else one of remap (h at most the result's part here).  Integer
    arrays and ndarray masks: one superstep; h = the elements this rank
    sends or receives, at most its part of the result (every rank works
    out the whole selection from the key: O(selection) work and memory).
    A DistArray mask: see `masked`.  A 0-d result: one superstep, a
    broadcast.  Raises numpy's IndexError for out-of-range indices, too
    many indices and indices of the wrong type, with the global shape."""
    if isinstance(key, DistArray):
        return masked(d, key)
    items = key_items(key)
    result_shape = selection_shape(d.shape, items)
    if is_basic(items):
        basic = parse_basic(d.shape, items)
        if not result_shape:
            return read_element(d, [int(pick) for pick in basic.picks])
        return _basic(d, basic, result_shape, kind)
    coords = selection_coords(d.shape, items)
    if not result_shape:
        return read_element(d, [int(c) for c in coords])
    return _selected(d, coords, kind)


def _basic(d: DistArray, basic: Basic, shape: tuple[int, ...], kind: int) -> DistArray:
    world = d.world
    free = _free_layout(d.layout, basic, shape, world.nprocs)
    if free is not None:
        layout, given = free
        part = mine(d.layout, basic, world.pid)
        local = d.local[np.ix_(*part[0])] if part is not None else np.empty(0, d.dtype)
        return DistArray._of(world, layout, given, local.reshape(layout.local_shape(world.pid)))
    layout, given = layout_of(shape, "block", None, world.nprocs)
    where = {axis: j for j, axis in enumerate(basic.result_axes) if axis is not None}
    new_axes = [j for j, axis in enumerate(basic.result_axes) if axis is None]

    def wanted(pid: int) -> list[np.ndarray]:
        held = layout.indices(pid)
        empty = any(len(held[j]) == 0 for j in new_axes)
        want = [np.asarray([pick], np.int64) if isinstance(pick, int) else pick[held[where[axis]]]
                for axis, pick in enumerate(basic.picks)]
        return [w[:0] for w in want] if empty else want

    block = remap.fetch(world.engine, kind, d.layout, d.local, wanted)
    return DistArray._of(world, layout, given, block.reshape(layout.local_shape(world.pid)))


_NOT_FREE = object()


def _kept_spec(layout: Layout, axis: int, pick: np.ndarray) -> Any:
    """The distribution of a sliced axis under which every selected
    element stays where it is, or _NOT_FREE."""
    spec, extent, line = layout.specs[axis], layout.grid[axis], layout.axes[axis]
    if extent == 1:
        return "block" if is_block(spec) else spec
    n = layout.shape[axis]
    steps = np.diff(pick)
    if len(pick) == n and (n == 0 or (pick[0] == 0 and (steps == 1).all())):
        return spec
    if line.kind == "cyclic" and len(pick) and pick[0] % (line.b * extent) == 0 and (steps == 1).all():
        return spec
    held = line.owner(pick)
    if (np.diff(held) >= 0).all():
        return ("block", tuple(int(c) for c in np.bincount(held, minlength=extent)))
    return _NOT_FREE


def _counts(spec: Any, n: int, extent: int) -> tuple[int, ...] | None:
    """Part sizes of a block-like axis, one per coordinate; None if the
    axis is cyclic over several coordinates."""
    if extent == 1:
        return (n,)
    if spec == "block":
        base, extra = divmod(n, extent)
        return tuple(base + (c < extra) for c in range(extent))
    if is_block(spec):
        return tuple(spec[1])
    return None


def _free_layout(layout: Layout, basic: Basic, shape: tuple[int, ...], nprocs: int) -> tuple[Layout, Any] | None:
    """The layout of a basic selection under which no element moves, or
    None (see the module's docstring)."""
    specs: dict[int, Any] = {}
    for axis, pick in enumerate(basic.picks):
        if not isinstance(pick, int):
            spec = _kept_spec(layout, axis, pick)
            if spec is _NOT_FREE:
                return None
            specs[axis] = spec
    result_specs: list[Any] = [None if axis is None else specs[axis] for axis in basic.result_axes]
    extents = [1 if axis is None else layout.grid[axis] for axis in basic.result_axes]
    for j, members in _folds(layout, basic).items():
        counts = _counts(result_specs[j], shape[j], extents[j])
        if counts is None:
            return None
        merged = np.zeros([extent for _, extent, _ in members], np.int64)
        merged[tuple(slice(None) if owner is None else owner for _, _, owner in members)] = counts
        result_specs[j], extents[j] = ("block", tuple(int(c) for c in merged.ravel())), merged.size
    return layout_of(shape, tuple(result_specs), tuple(extents), nprocs)


def _folds(layout: Layout, basic: Basic) -> dict[int, list[tuple[int, int, int | None]]]:
    """Per result axis that takes in the grid extents of dropped split
    axes: (source axis, extent, owning coordinate or None for itself), in
    source order, the kept axis to the left of a dropped one, else the
    first kept one (else the first new axis)."""
    result_of = {axis: j for j, axis in enumerate(basic.result_axes) if axis is not None}
    dropped = [axis for axis, pick in enumerate(basic.picks) if isinstance(pick, int) and layout.grid[axis] > 1]
    if not dropped:
        return {}
    kept = sorted(result_of)
    folds: dict[int, list[tuple[int, int, int | None]]] = {}
    for axis in dropped:
        left = [k for k in kept if k < axis]
        into = left[-1] if left else kept[0] if kept else None
        j = result_of[into] if into is not None else basic.result_axes.index(None)
        members = folds.setdefault(j, [(len(layout.shape) if into is None else into,
                                        1 if into is None else layout.grid[into], None)])
        pick = basic.picks[axis]
        owner = int(layout.axes[axis].owner(np.asarray([pick]))[0])
        members.append((axis, layout.grid[axis], owner))
    return {j: sorted(members, key=lambda member: member[0]) for j, members in folds.items()}


def _selected(d: DistArray, coords: Coords, kind: int) -> DistArray:
    world = d.world
    shape = coords[0].shape
    layout, given = layout_of(shape, "block", None, world.nprocs)
    bounds = row_bounds(layout)
    flat = tuple(c.ravel() for c in coords)
    dests = np.searchsorted(bounds, np.arange(math.prod(shape), dtype=np.int64), side="right") - 1
    local = np.empty(layout.local_shape(world.pid), d.dtype)
    out = local.reshape(-1)
    start = bounds[world.pid]
    for ids, values in transfer(world.engine, kind, d.layout, d.local, flat, dests):
        out[ids - start] = values
    return DistArray._of(world, layout, given, local)


def _check_mask(d: DistArray, mask: DistArray) -> None:
    if mask.dtype != np.bool_:
        raise IndexError(f"a DistArray index must be a boolean mask of shape {d.shape}, not of dtype {mask.dtype} "
                         "(for integer indices, use an ndarray)")
    if mask.ndim > d.ndim:
        raise IndexError(f"too many indices for array: array is {d.ndim}-dimensional, but {mask.ndim} were indexed")
    for axis, (n, m) in enumerate(zip(d.shape, mask.shape)):
        if n != m:
            raise IndexError(f"boolean index did not match indexed array along axis {axis}; size of axis is {n} "
                             f"but size of corresponding boolean axis is {m}")
    if mask.ndim != d.ndim:
        raise IndexError(f"a DistArray mask must have the whole shape {d.shape} of the array it indexes, "
                         f"not {mask.shape}")


def c_ordered(layout: Layout) -> bool:
    """Whether the ranks' parts are consecutive runs of the flat C order,
    in pid order (one block-split axis, nothing split before it)."""
    if layout.replicated:
        return layout.nprocs == 1
    split = [axis for axis, extent in enumerate(layout.grid) if extent > 1]
    return not split or (len(split) == 1 and layout.axes[split[0]].kind == "block"
                         and math.prod(layout.shape[:split[0]]) <= 1)


def _flat_parts(d: DistArray, mask: DistArray, kind: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """d's and mask's elements here, in flat C order, as runs of the flat
    order in pid order, and the runs' bounds (None: d's own parts).
    Nothing moves if both share a C-ordered layout, else one superstep."""
    if d.layout == mask.layout and c_ordered(d.layout):
        return d.local.ravel(), mask.local.ravel(), None
    bounds = np.asarray(layout_of((d.size,), "block", None, d.world.nprocs)[0].axes[0].starts, np.int64)
    values, chosen = regroup(d.world.engine, kind, [flat_stream(d), flat_stream(mask)], bounds)
    return values, chosen, bounds


def masked(d: DistArray, mask: DistArray) -> DistArray:
    """numpy's `d[mask]` for a boolean DistArray `mask` of d's shape: the
    selected elements in C order, a 1-D DistArray split ("block", sizes)
    by where they were selected.  One superstep (the counts) when d and
    mask share a layout whose parts follow the flat C order in pid order
    (a block split of axis 0); else two: d and the mask to "block" runs of
    the flat order (h at most a part of each), then the counts.  Raises
    IndexError as numpy for a mask of another shape."""
    _check_mask(d, mask)
    values, chosen, _ = _flat_parts(d, mask, superstep_kinds.GETITEM)
    local = values[chosen.astype(bool)]
    counts = _counts_everywhere(d.world, len(local))
    layout, given = layout_of((sum(counts),), ("block", counts), None, d.world.nprocs)
    return DistArray._of(d.world, layout, given, local)


def _counts_everywhere(world: Any, count: int) -> tuple[int, ...]:
    others = [pid for pid in range(world.nprocs) if pid != world.pid]
    arrived = collectives.superstep(world.engine, superstep_kinds.MASK_COUNTS, [(others, count)] if others else [])
    counts = dict(arrived)
    counts[world.pid] = count
    return tuple(int(counts[pid]) for pid in range(world.nprocs))


# -- d[key] = value ----------------------------------------------------------------

def setitem(d: DistArray, key: Any, value: Any) -> None:
    """numpy's `d[key] = value`: `value` (a scalar, an ndarray or a
    DistArray) broadcast to the selection, cast to d's dtype as numpy
    casts; with repeated indices the last in C order wins.  Basic keys:
    each rank writes the elements it holds; no superstep for a scalar or
    ndarray value, one of remap for a DistArray value (h at most the
    value's elements this rank's selection needs).  Integer arrays and
    ndarray masks: no superstep for a scalar or ndarray value (every rank
    holds it and writes its own elements), one for a DistArray value (each
    value element to the owner of its target: h at most the selection's
    part).  A DistArray mask: see `set_masked`.  Raises numpy's IndexError
    for a bad key and ValueError when the value does not broadcast to the
    selection's shape."""
    if isinstance(key, DistArray):
        set_masked(d, key, value)
        return
    items = key_items(key)
    shape = selection_shape(d.shape, items)
    if is_basic(items):
        basic = parse_basic(d.shape, items)
        if isinstance(value, DistArray):
            _set_basic_from(d, basic, shape, value)
        else:
            _set_basic(d, basic, values_for(value, shape, d.dtype))
        return
    _set_selected(d, selection_coords(d.shape, items), value)


def values_for(value: Any, shape: tuple[int, ...], dtype: Any) -> np.ndarray:
    """`value` cast to `dtype` as numpy's assignment casts it, broadcast to
    a selection of `shape` (leading axes of 1 dropped, as numpy does);
    ValueError as numpy if it does not broadcast."""
    given = np.asarray(value)
    converted = np.empty(given.shape, dtype)
    converted[...] = given
    while converted.ndim > len(shape) and converted.shape[0] == 1:
        converted = converted[0]
    try:
        return np.broadcast_to(converted, shape)
    except ValueError:
        raise ValueError(f"could not broadcast input array from shape {given.shape} into shape {shape}") from None


def _check_broadcast(value: DistArray, shape: tuple[int, ...]) -> int:
    """How many leading axes of the selection `value` lacks; ValueError as
    numpy if it does not broadcast to `shape`."""
    lead = len(shape) - value.ndim
    if lead < 0 or any(n not in (1, m) for n, m in zip(value.shape, shape[lead:])):
        raise ValueError(f"could not broadcast input array from shape {value.shape} into shape {shape}")
    return lead


def _set_basic(d: DistArray, basic: Basic, values: np.ndarray) -> None:
    part = mine(d.layout, basic, d.world.pid)
    if part is not None:
        local, results = part
        d.local[np.ix_(*local)] = values[np.ix_(*results)].reshape([len(p) for p in local])


def _set_basic_from(d: DistArray, basic: Basic, shape: tuple[int, ...], value: DistArray) -> None:
    lead = _check_broadcast(value, shape)

    def wanted(pid: int) -> list[np.ndarray]:
        part = mine(d.layout, basic, pid)
        results = part[1] if part is not None else [np.empty(0, np.int64)] * len(shape)
        return [results[lead + v] if n != 1 else np.zeros(min(len(results[lead + v]), 1), np.int64)
                for v, n in enumerate(value.shape)]

    block = remap.fetch(d.world.engine, superstep_kinds.SETITEM, value.layout, value.local, wanted)
    part = mine(d.layout, basic, d.world.pid)
    if part is not None:
        local, results = part
        values = np.broadcast_to(block, tuple(len(r) for r in results))
        d.local[np.ix_(*local)] = values.reshape([len(p) for p in local])


def _set_selected(d: DistArray, coords: Coords, value: Any) -> None:
    shape = coords[0].shape
    flat = tuple(c.ravel() for c in coords)
    reversed_keys = flat_index(flat, d.shape)[::-1]
    _, first = np.unique(reversed_keys, return_index=True)
    keep = np.sort(len(reversed_keys) - 1 - first)         # the last of each repeated index, as numpy
    targets = tuple(c[keep] for c in flat)
    if isinstance(value, DistArray) and not d.layout.replicated:
        lead = _check_broadcast(value, shape)
        at = np.unravel_index(keep, shape)
        sources = tuple(np.zeros(len(keep), np.int64) if n == 1 else at[lead + v] for v, n in enumerate(value.shape))
        dests = owners(d.layout, targets)
        for ids, values in transfer(d.world.engine, superstep_kinds.SETITEM, value.layout, value.local, sources, dests):
            d.local[positions(d.layout, tuple(t[ids] for t in targets))] = values
        return
    if isinstance(value, DistArray):
        _check_broadcast(value, shape)
        value = value.allgather()           # every rank holds all of d: each needs every value
    values = values_for(value, shape, d.dtype).reshape(-1)[keep]
    here = np.ones(len(keep), bool) if d.layout.replicated else owners(d.layout, targets) == d.world.pid
    d.local[positions(d.layout, tuple(t[here] for t in targets))] = values[here]


def set_masked(d: DistArray, mask: DistArray, value: Any) -> None:
    """numpy's `d[mask] = value` for a boolean DistArray `mask` of d's
    shape.  A value of one element (a scalar): the mask comes to d's
    layout if it has another (one superstep of remap, h at most a part),
    then each rank writes its own elements.  A value with one element per
    selected one (an ndarray, or a 1-D DistArray): the selected elements'
    places in C order are counted as in `masked` (one superstep, two if
    d and the mask do not share a layout whose parts follow the C order);
    a DistArray value's elements come to the ranks that counted them (one
    superstep of remap); then, unless d's parts were those runs, the mask
    comes to d's layout if it has another (one superstep) and the values
    go on to the elements' owners (one superstep).  At most five
    supersteps; h at most a part or a run, of values and of the mask.
    Raises IndexError as numpy for a mask of another shape, ValueError
    for a value of another length."""
    _check_mask(d, mask)
    engine = d.world.engine
    if not isinstance(value, DistArray) and np.size(value) == 1:
        d.local[_mask_here(d, mask)] = values_for(value, (), d.dtype)
        return
    _, chosen, bounds = _flat_parts(d, mask, superstep_kinds.SETITEM)
    chosen = chosen.astype(bool)
    counts = _counts_everywhere(d.world, int(chosen.sum()))
    total, me = sum(counts), d.world.pid
    offsets = np.concatenate(([0], np.cumsum(counts))).astype(np.int64)
    if isinstance(value, DistArray):
        if value.shape != (total,):
            raise ValueError(f"could not broadcast input array from shape {value.shape} into shape ({total},)")
        values = remap.fetch(engine, superstep_kinds.SETITEM, value.layout, value.local,
                             lambda pid: (np.arange(offsets[pid], offsets[pid + 1], dtype=np.int64),))
        values = values_for(values, (counts[me],), d.dtype)
    else:
        values = values_for(value, (total,), d.dtype)[offsets[me]:offsets[me + 1]]
    if bounds is None:                                  # d's own parts were the runs
        d.local[chosen.reshape(d.local.shape)] = values
        return
    _return_to_owners(d, mask, chosen, values, bounds)


def _return_to_owners(d: DistArray, mask: DistArray, chosen: np.ndarray, values: np.ndarray,
                      bounds: np.ndarray) -> None:
    """The values of the selected elements of this rank's run of the flat
    order, to the elements' owners: each sends each owner, in flat order,
    the values of its run's selected elements that the owner holds, and
    the owner places them by its own part of the mask (brought to d's
    layout first if it has another: one superstep of remap).  One
    superstep, h at most the selected elements of a run or of a part."""
    world, layout = d.world, d.layout
    me = world.pid
    flat = np.arange(bounds[me], bounds[me + 1], dtype=np.int64)[chosen]
    dests = owners(layout, np.unravel_index(flat, d.shape)) if not layout.replicated else None
    posts: list[tuple[tuple[int, ...], np.ndarray]] = []
    for dest in range(world.nprocs):
        mine_to = values if dests is None else values[dests == dest]
        if dest != me and len(mine_to):
            posts.append(((dest,), mine_to))
    own = values if dests is None else values[dests == me]
    here = _mask_here(d, mask)
    arrived = collectives.superstep(world.engine, superstep_kinds.SETITEM, posts)
    held = np.ix_(*layout.indices(me))
    selected = np.broadcast_to(flat_index(held, d.shape), d.local.shape)[here]
    order = np.argsort(selected, kind="stable")
    runs = np.searchsorted(bounds, selected[order], side="right") - 1
    places = np.argwhere(here)[order]
    for source, got in [(me, own), *arrived]:
        at = places[runs == source]
        d.local[tuple(at.T)] = got


def _mask_here(d: DistArray, mask: DistArray) -> np.ndarray:
    """This rank's part of `mask` under d's layout (one superstep of remap
    if it has another, h at most a part)."""
    if mask.layout == d.layout:
        return mask.local.astype(bool, copy=False)
    here: np.ndarray = remap.fetch(d.world.engine, superstep_kinds.SETITEM, mask.layout, mask.local, d.layout.indices)
    return here.astype(bool, copy=False)
