"""Sorting a DistArray by numpy's rules: `np.sort`, `np.argsort` and
`np.unique` (and the methods `d.sort`, in place, and `d.argsort`).

The order is numpy's *stable* order: equal values keep the order of their
indices, NaNs last, as `np.sort(a, kind="stable")` and
`np.argsort(a, kind="stable")` give (numpy's default quicksort argsort
leaves ties in no defined order; pybsp's argsort returns the stable one, at
every kind=, so that the answer does not depend on nprocs or the layout).

Along an axis that is not split (grid extent 1), every rank sorts its own
lanes: no communication, and the result keeps the layout.  Along a split
axis the P = grid[axis] ranks that hold the same lanes (those whose grid
coordinates differ only along `axis`; every such group at once) sort them
together by a sample sort with regular sampling (PSRS), in three
supersteps; N_g is the number of elements of a group, N_g / P per rank
when balanced:

1. `sort_samples`: each rank sorts its part of every lane (stable) and sends
   the others of its group P-1 regular samples of its sorted keys
   (h = (P-1)^2 keys of 2 or 3 words);
2. `sort_buckets`: every rank picks the same P-1 splitters from the
   P(P-1) samples, cuts its sorted keys into P buckets and sends bucket j to
   the group's j-th rank with its P bucket sizes, then merges what arrives
   (h: a bucket, at most about 2 N_g / P keys of 2 or 3 words, since the keys
   are distinct (ties are broken by index) and the samples regular; plus P
   words to each rank);
3. `sort_place`: each rank now holds a run of the group's sorted sequence and
   knows from the bucket sizes where it starts; every element goes to its
   place in the result (h at most the run, N_g / P words when balanced).

The keys are (lane, value, index along the axis), so splitting, like the
order, does not depend on how the ties fall.  Result layouts: a sort along
a split axis keeps the grid and every other axis's distribution, and makes
the sorted axis "block" (regular parts: balanced whatever the data; for a
one-dimensional array, a "block" split along axis 0, as DESIGN §2.2 says).
`axis=None` sorts the flattened array (C order) into a one-dimensional array
"block" split over all ranks (the same three supersteps, the whole world one
group).  `np.unique` gives a one-dimensional "block" array too (see
`unique`).  Arrays held whole by every rank (one rank, or replicated) sort
locally and keep their (whole) layout, or, flattened, take their "block"
part of the result.
"""

from __future__ import annotations

import math
from typing import Any, Callable, NamedTuple, Sequence

import numpy as np

from bsp.arrays import superstep_kinds
from bsp.arrays.distarray import DistArray
from bsp.arrays.distribution import Axis, Layout, as_index, layout_of, single_spec
from bsp.arrays.numpy_functions import implements
from bsp.core.engine import Engine
from bsp.objects import collectives

Columns = tuple[np.ndarray, ...]


class _Group(NamedTuple):
    """The ranks that sort the same lanes together."""

    engine: Engine
    members: Sequence[int]       # world pids, in grid-coordinate order along the sorted axis
    place: int                   # this rank's place among them

    def others(self) -> list[tuple[int, int]]:
        return [(j, pid) for j, pid in enumerate(self.members) if j != self.place]

    def by_place(self, mine: Any, arrived: list[tuple[int, Any]]) -> list[Any]:
        """This rank's `mine` and what arrived from the others, in place order."""
        places = {pid: j for j, pid in enumerate(self.members)}
        pieces = {self.place: mine}
        pieces.update((places[source], obj) for source, obj in arrived)
        return [pieces[j] for j in sorted(pieces)]


# -- numpy's functions ----------------------------------------------------------

@implements(np.sort)
def sort(a: DistArray, axis: int | None = -1, kind: str | None = None, order: Any = None, *,
         stable: bool | None = None) -> DistArray:
    """`np.sort(a, axis, kind)`: the sorted values, in numpy's stable order
    (see the module's docstring for the layouts and the cost: none along an
    axis that is not split; else 3 supersteps, h at most about 2 N_g / P
    keys of 2 or 3 words per rank).  numpy's errors for a bad axis (AxisError),
    kind or stable; TypeError for `order` (fields of structured dtypes)."""
    _check(np.sort, a, axis, kind, order, stable)
    return _sorted(a, axis, indices=False)


@implements(np.argsort)
def argsort(a: DistArray, axis: int | None = -1, kind: str | None = None, order: Any = None, *,
            stable: bool | None = None) -> DistArray:
    """`np.argsort(a, axis, kind="stable")` whatever `kind`: global indices
    along `axis` (flat C-order indices for axis=None), int64, in a DistArray
    laid out as `np.sort`'s result.  Cost and errors as `sort`."""
    _check(np.argsort, a, axis, kind, order, stable)
    return _sorted(a, axis, indices=True)


@implements(np.unique)
def unique(ar: DistArray, return_index: bool = False, return_inverse: bool = False, return_counts: bool = False,
           axis: int | None = None, *, equal_nan: bool = True, sorted: bool = True) -> Any:
    """`np.unique(ar)`: the sorted distinct values of the flattened array, a
    one-dimensional DistArray "block" split over all ranks; with
    `return_index` (the flat index of each value's first occurrence) and
    `return_counts`, numpy's tuple of such DistArrays.  `equal_nan` as numpy
    (NaNs one value, or each its own); `sorted=False` gets them sorted too.

    Each rank keeps its distinct values with their counts (and first
    indices); a sample sort splitting on the value alone sends all copies of
    a value to one rank, which merges them; one more superstep counts the
    distinct values of each rank, one places them in "block" parts:
    4 supersteps (`sort_samples`, `sort_buckets`, `unique_counts`,
    `sort_place`), h at most about 2 D / p of (1 to 3)-word records, D the
    number of distinct values summed over the ranks (at most N).  An array
    held whole by every rank needs no communication.  TypeError for
    `return_inverse` and `axis` (not supported)."""
    if return_inverse:
        raise TypeError("np.unique(..., return_inverse=True) is not supported on bsp.DistArray "
                        "(return_index and return_counts are)")
    if axis is not None:
        raise TypeError(f"np.unique(..., axis={axis!r}) is not supported on bsp.DistArray: it flattens the array")
    world = ar.world
    if _whole_everywhere(ar):
        values, first, counts = np.unique(ar.local, return_index=True, return_counts=True, equal_nan=equal_nan)
        layout, given = layout_of((len(values),), "block", None, world.nprocs)
        columns: Columns = (values, first, counts)
        window = as_index(layout.indices(world.pid)[0])
        columns = tuple(column[window] for column in columns)
    else:
        columns, layout, given = _distributed_unique(ar, return_index, equal_nan)
    parts = [DistArray._of(world, layout, given, np.ascontiguousarray(column)) for column in columns]
    values_part, counts_part = parts[0], parts[-1]
    chosen = [values_part] + [parts[1]] * return_index + [counts_part] * return_counts
    return chosen[0] if len(chosen) == 1 else tuple(chosen)


def _distributed_unique(ar: DistArray, return_index: bool, equal_nan: bool) -> tuple[Columns, Layout, Any]:
    """The sample sort of `unique`: this rank's part of (values, first
    indices if `return_index`, counts), the result's layout, as given."""
    world, group = ar.world, _Group(ar.world.engine, range(ar.world.nprocs), ar.world.pid)
    values, first, counts = np.unique(ar.local.ravel(), return_index=True, return_counts=True, equal_nan=equal_nan)
    keys: Columns = (values, _flat_indices(ar)[first]) if return_index else (values,)
    nan_start = len(values) - int(np.count_nonzero(_isnan(values))) if equal_nan else None
    merged, (merged_counts,), _ = _sample_sort(group, keys, (counts,), split_on=1, cap=nan_start)
    _, starts = np.unique(merged[0], return_index=True, equal_nan=equal_nan)
    columns: Columns = tuple(key[starts] for key in merged)
    columns += (np.add.reduceat(merged_counts, starts) if len(starts) else merged_counts[:0],)
    others = [pid for _, pid in group.others()]
    arrived = collectives.superstep(world.engine, superstep_kinds.UNIQUE_COUNTS,
                                    [(others, len(starts))] if others else [])
    sizes = group.by_place(len(starts), arrived)
    layout, given = layout_of((sum(sizes),), "block", None, world.nprocs)
    placed = _place(group, columns, sum(sizes[:group.place]), sum(sizes), layout.axes[0])
    return placed, layout, given


def _isnan(values: np.ndarray) -> np.ndarray:
    if values.dtype.kind in "fc":
        nan: np.ndarray = np.isnan(values)
        return nan
    return np.zeros(values.shape, bool)


def _check(function: Callable[..., Any], a: DistArray, axis: Any, kind: Any, order: Any, stable: Any) -> None:
    """numpy's own errors for the arguments, from an empty array of a's
    dtype and number of axes (identically on every rank, before any
    superstep); TypeError for `order`."""
    function(np.empty((0,) * a.ndim, a.dtype), axis=axis, kind=kind, order=order, stable=stable)
    if order is not None:
        raise TypeError(f"{function.__name__}(..., order={order!r}) is not supported on bsp.DistArray")


def _whole_everywhere(a: DistArray) -> bool:
    """Whether every rank holds all of `a` (one rank, or a replicated layout)."""
    return math.prod(a.grid) == 1


def _sorted(a: DistArray, axis: int | None, indices: bool) -> DistArray:
    """The stable sort (indices: argsort) of `a` along `axis` (None: flattened)."""
    if axis is None:
        return _sorted_flat(a, indices)
    axis = int(axis) % a.ndim
    layout, given = _sorted_layout(a, axis)
    if a.grid[axis] == 1:           # every lane whole here: its indices are local positions
        function = np.argsort if indices else np.sort
        return DistArray._of(a.world, layout, given, function(a.local, axis, kind="stable"))
    return _sorted_split(a, axis, layout, given, indices)


def _sorted_layout(a: DistArray, axis: int) -> tuple[Layout, Any]:
    """The layout of a sorted along `axis`: the sorted axis "block" if it is
    split (at any grid extent, so that the distribution does not depend on
    nprocs), every other axis and the grid as a's."""
    if a.layout.specs[axis] is None:
        return a.layout, a.distribution
    specs = tuple("block" if i == axis else spec for i, spec in enumerate(a.layout.specs))
    distribution: Any = "block" if axis == 0 and single_spec(a.distribution) is not None else specs
    return layout_of(a.shape, distribution, a.layout.grid, a.world.nprocs)


def _sorted_flat(a: DistArray, indices: bool) -> DistArray:
    world = a.world
    layout, given = layout_of((a.size,), "block", None, world.nprocs)
    if _whole_everywhere(a):
        function = np.argsort if indices else np.sort
        whole = function(a.local, axis=None, kind="stable")
        return DistArray._of(world, layout, given, whole[as_index(layout.indices(world.pid)[0])])
    values = a.local.ravel()
    order = np.argsort(values, kind="stable")
    keys = (values[order], _flat_indices(a)[order])
    group = _Group(world.engine, range(world.nprocs), world.pid)
    return DistArray._of(world, layout, given, _sample_sorted(group, keys, a.size, layout.axes[0], indices))


def _sorted_split(a: DistArray, axis: int, result: Layout, given: Any, indices: bool) -> DistArray:
    """Sort along a split axis: each group of ranks along `axis` sorts its lanes."""
    world, layout = a.world, a.layout
    coords = layout.coords_of(world.pid)
    members = [layout.rank_of(coords[:axis] + (c,) + coords[axis + 1:]) for c in range(layout.grid[axis])]
    moved = np.moveaxis(a.local, axis, -1)
    lanes, m = math.prod(moved.shape[:-1]), moved.shape[-1]
    values = moved.reshape(lanes, m)
    order = np.argsort(values, axis=1, kind="stable")
    keys: Columns = (np.take_along_axis(values, order, 1).ravel(), a.index(axis)[order].ravel())
    if lanes != 1:      # the same number on every rank of the group
        keys = (np.repeat(np.arange(lanes, dtype=np.int64), m),) + keys
    group = _Group(world.engine, members, coords[axis])
    placed = _sample_sorted(group, keys, a.shape[axis], result.axes[axis], indices)
    span = result.local_shape(world.pid)[axis]
    local = np.moveaxis(placed.reshape(moved.shape[:-1] + (span,)), -1, axis)
    return DistArray._of(world, result, given, np.ascontiguousarray(local))


def _sample_sorted(group: _Group, keys: Columns, lane_length: int, target: Axis, indices: bool) -> np.ndarray:
    """This rank's part of the group's sorted lanes, values or (indices) the
    indices: keys (..., value, index) sorted locally, lanes of `lane_length`
    in "block" parts of `target`."""
    merged, _, sizes = _sample_sort(group, keys, ())
    wanted = merged[-1] if indices else merged[-2]
    [placed] = _place(group, (wanted,), sum(sizes[:group.place]), lane_length, target)
    return placed


def _flat_indices(a: DistArray) -> np.ndarray:
    """The flat (C-order) global index of each element of a's local part,
    in local C order (so increasing)."""
    held = a.layout.indices(a.world.pid)
    return np.ravel_multi_index(np.ix_(*held), a.shape).ravel().astype(np.int64)


# -- the sample sort ------------------------------------------------------------------

def _sample_sort(group: _Group, keys: Columns, payload: Columns, split_on: int | None = None,
                 cap: int | None = None) -> tuple[Columns, Columns, list[int]]:
    """Sort the group's records (key columns, primary first, each rank's
    already sorted lexicographically; payload columns travel along) into
    runs: this rank's run (keys, payload) and every bucket's size, in place
    order (this rank's run is bucket `group.place`).  Splitting compares the
    first `split_on` keys only (all: None), so that records equal in those
    go to one rank; `cap` bounds every cut (unique: all NaNs to one rank).
    2 supersteps: `sort_samples`, `sort_buckets`."""
    split_on = len(keys) if split_on is None else split_on
    splitters = _splitters(group, keys[:split_on])
    count = len(keys[0])
    limit = count if cap is None else cap
    inner = [min(_count_below(keys[:split_on], s), limit) for s in splitters] or [count] * (len(group.members) - 1)
    cuts = [0, *inner, count]
    sizes = np.diff(cuts)
    columns = keys + payload
    posts = [([pid], (sizes, tuple(column[cuts[j]:cuts[j + 1]] for column in columns)))
             for j, pid in group.others()]
    arrived = collectives.superstep(group.engine, superstep_kinds.SORT_BUCKETS, posts)
    mine = (sizes, tuple(column[cuts[group.place]:cuts[group.place + 1]] for column in columns))
    received = group.by_place(mine, arrived)
    bucket_sizes = np.asarray(np.sum([sizes for sizes, _ in received], axis=0, dtype=np.int64))
    run = tuple(np.concatenate([pieces[i] for _, pieces in received]) for i in range(len(columns)))
    order = np.lexsort(run[:len(keys)][::-1]) if len(keys) > 1 else np.argsort(run[0], kind="stable")
    run = tuple(column[order] for column in run)
    return run[:len(keys)], run[len(keys):], [int(size) for size in bucket_sizes]


def _splitters(group: _Group, keys: Columns) -> list[tuple[Any, ...]]:
    """The group's P-1 splitters (key tuples), the same on every rank: P-1
    regular samples of each rank's sorted keys, to every rank of the group
    in one superstep (`sort_samples`), sorted, and P-1 regular picks."""
    parts = len(group.members)
    count = len(keys[0])
    at = [i * count // parts for i in range(1, parts)] if count else []
    samples = tuple(key[at] for key in keys)
    posts = [([pid for _, pid in group.others()], samples)] if parts > 1 else []
    arrived = collectives.superstep(group.engine, superstep_kinds.SORT_SAMPLES, posts)
    gathered = group.by_place(samples, arrived)
    pooled = tuple(np.concatenate([sample[i] for sample in gathered]) for i in range(len(keys)))
    order = np.lexsort(pooled[::-1])
    total = len(order)
    if not total:
        return []
    return [tuple(key[order[i * total // parts]] for key in pooled) for i in range(1, parts)]


def _count_below(keys: Columns, splitter: tuple[Any, ...]) -> int:
    """How many of the (lexicographically sorted) records are below the
    splitter: a binary search per key, within the run of equal earlier keys."""
    lo, hi = 0, len(keys[0])
    for key, value in zip(keys, splitter):
        part = key[lo:hi]
        lo, hi = lo + int(np.searchsorted(part, value, "left")), lo + int(np.searchsorted(part, value, "right"))
    return lo


def _place(group: _Group, payload: Columns, offset: int, lane_length: int, target: Axis) -> Columns:
    """Send each record of this rank's run, which starts at position `offset`
    of the group's sorted sequence (lanes of `lane_length` one after
    another), to the rank of the group whose "block" part of `target` holds
    its position in its lane; return this rank's records, lane by lane.
    1 superstep (`sort_place`).  Every rank's run is contiguous and follows
    the previous rank's, so what arrives, in place order, is in order."""
    count = len(payload[0])
    positions = (offset + np.arange(count, dtype=np.int64)) % max(lane_length, 1)
    dests = target.owner(positions) if count else positions
    posts = []
    for j, pid in group.others():
        chosen = dests == j
        if chosen.any():
            posts.append(([pid], tuple(column[chosen] for column in payload)))
    arrived = collectives.superstep(group.engine, superstep_kinds.SORT_PLACE, posts)
    own = dests == group.place
    pieces = group.by_place(tuple(column[own] for column in payload), arrived)
    return tuple(np.concatenate([piece[i] for piece in pieces]) for i in range(len(payload)))
