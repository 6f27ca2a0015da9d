"""Shape operations on DistArrays, by numpy's rules (DESIGN.md §2.2):
reshape, ravel, flatten, transpose, swapaxes, moveaxis, squeeze,
expand_dims, concatenate and stack.  numpy checks every shape and axis
against zero-byte shadows of the global shapes (see
bsp.arrays.global_indexing), so errors are numpy's, on every rank alike.

Result layouts: reshape, ravel, flatten, concatenate and stack give a
"block" split along axis 0 (one superstep of regroup).  transpose,
swapaxes and moveaxis keep the array's distribution and grid in place,
axis by axis (so `a + a.T` needs no redistribution, and a 1-D-API array,
split along axis 0, stays split along axis 0): one superstep, none when no
element changes owner.  squeeze and expand_dims are basic indexing (no
element moves unless a split axis of length 1 must go: see
global_indexing)."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np

from bsp.arrays import remap, superstep_kinds
from bsp.arrays.distarray import DistArray
from bsp.arrays.distribution import Layout, is_block, layout_of, single_spec
from bsp.arrays.global_indexing import (Source, Stream, flat_index, flat_stream, getitem, read_element, regroup,
                                        row_bounds, shadow)
from bsp.arrays.numpy_functions import implements

normalize_axis_tuple = np.lib.array_utils.normalize_axis_tuple
normalize_axis_index = np.lib.array_utils.normalize_axis_index


def _check_order(order: Any) -> None:
    if order not in ("C", None):
        raise NotImplementedError(f"DistArray reshapes in C order only, not order={order!r}")


@implements(np.reshape)
def reshape(a: DistArray, shape: Any = None, order: Any = "C", *, copy: Any = None) -> Any:
    """numpy's `np.reshape(a, shape)` in C order (-1 inferred as numpy
    does), always a copy: a DistArray split "block" along axis 0, or, for
    shape (), the one element as a numpy scalar on every rank.  One
    superstep; h at most the elements of a part (each element travels
    once, from its owner to the rank whose rows take it).  Raises numpy's
    ValueError for a shape of another size, NotImplementedError for order
    other than "C"."""
    _check_order(order)
    if copy is False:
        raise ValueError("a DistArray cannot be reshaped without a copy (copy=False)")
    new_shape: tuple[int, ...] = shadow(a.shape).reshape(shape).shape
    return _to_rows(a, new_shape, superstep_kinds.RESHAPE)


@implements(np.ravel)
def ravel(a: DistArray, order: Any = "C") -> DistArray:
    """numpy's `np.ravel(a)`: the elements in C order, a 1-D DistArray
    split "block".  One superstep, h at most a part (see `reshape`)."""
    _check_order(order)
    result: DistArray = _to_rows(a, (a.size,), superstep_kinds.RESHAPE)
    return result


def _to_rows(a: DistArray, shape: tuple[int, ...], kind: int) -> Any:
    if not shape:
        return read_element(a, [0] * a.ndim, kind)
    layout, given = layout_of(shape, "block", None, a.world.nprocs)
    [local] = regroup(a.world.engine, kind, [flat_stream(a)], row_bounds(layout))
    return DistArray._of(a.world, layout, given, local.reshape(layout.local_shape(a.world.pid)))


@implements(np.transpose)
def transpose(a: DistArray, axes: Any = None) -> DistArray:
    """numpy's `np.transpose(a, axes)` (reversed axes by default), under
    a's distribution and grid, axis by axis (a ("block", sizes) axis
    becomes "block").  No superstep if no element changes owner (axes not
    split trade places, or one rank), else one of remap ending as
    "transpose"; h at most a part, more exactly the elements whose owner
    changes.  Raises numpy's AxisError or ValueError for bad axes."""
    perm = tuple(range(a.ndim))[::-1] if axes is None else _permutation(a.shape, axes)
    shape = tuple(a.shape[axis] for axis in perm)
    layout, given = layout_of(shape, _same_kinds(a), a.grid, a.world.nprocs)
    if _stays(a.layout, layout, perm):
        return DistArray._of(a.world, layout, given, a.local.transpose(perm).copy())
    local = remap.fetch(a.world.engine, superstep_kinds.TRANSPOSE, a.layout, a.local, layout.indices, axes=perm)
    return DistArray._of(a.world, layout, given, local)


def _permutation(shape: tuple[int, ...], axes: Any) -> tuple[int, ...]:
    shadow(shape).transpose(axes)           # numpy's errors: AxisError, "axes don't match array", repeats
    perm: tuple[int, ...] = normalize_axis_tuple(tuple(axes), len(shape))
    return perm


def _same_kinds(a: DistArray) -> Any:
    """a's distribution for an array of permuted shape: part sizes, which
    belong to one length, become the regular "block"."""
    single = single_spec(a.distribution)
    if single is not None:
        return "block" if is_block(single) else single
    return tuple("block" if is_block(spec) else spec for spec in a.layout.specs)


def _stays(source: Layout, target: Layout, perm: tuple[int, ...]) -> bool:
    """Whether every rank holds under `target` the elements it holds under
    `source`, axes permuted by `perm`."""
    for pid in range(source.nprocs):
        held, wanted = source.indices(pid), target.indices(pid)
        if any(not np.array_equal(held[axis], indices) for axis, indices in zip(perm, wanted)):
            return False
    return True


@implements(np.swapaxes)
def swapaxes(a: DistArray, axis1: int, axis2: int) -> DistArray:
    """numpy's `np.swapaxes(a, axis1, axis2)`: `transpose` with those two
    axes exchanged (its costs).  Raises numpy's AxisError."""
    perm = list(range(a.ndim))
    first, second = normalize_axis_index(axis1, a.ndim), normalize_axis_index(axis2, a.ndim)
    perm[first], perm[second] = second, first
    return transpose(a, perm)


@implements(np.moveaxis)
def moveaxis(a: DistArray, source: Any, destination: Any) -> DistArray:
    """numpy's `np.moveaxis(a, source, destination)`: `transpose` with
    those axes moved (its costs).  Raises numpy's AxisError, or ValueError
    when source and destination differ in length."""
    sources = normalize_axis_tuple(source, a.ndim, "source")
    destinations = normalize_axis_tuple(destination, a.ndim, "destination")
    if len(sources) != len(destinations):
        raise ValueError("`source` and `destination` arguments must have the same number of elements")
    order = [axis for axis in range(a.ndim) if axis not in sources]
    for dest, src in sorted(zip(destinations, sources)):
        order.insert(dest, src)
    return transpose(a, order)


@implements(np.squeeze)
def squeeze(a: DistArray, axis: Any = None) -> Any:
    """numpy's `np.squeeze(a, axis)`: basic indexing with 0 on the axes of
    length 1 (all of them for axis None).  No superstep when those axes are
    not split over several ranks or fold into a block axis; else one of
    remap (h at most a part); a 0-d result is a numpy scalar on every rank
    (one superstep, a broadcast).  Raises numpy's ValueError for an axis
    whose length is not 1, AxisError for a bad axis."""
    shadow(a.shape).squeeze(axis)
    dropped = ([ax for ax, n in enumerate(a.shape) if n == 1] if axis is None
               else normalize_axis_tuple(axis, a.ndim))
    key = tuple(0 if ax in dropped else slice(None) for ax in range(a.ndim))
    return getitem(a, key, superstep_kinds.SQUEEZE)


@implements(np.expand_dims)
def expand_dims(a: DistArray, axis: Any) -> DistArray:
    """numpy's `np.expand_dims(a, axis)`: new axes of length 1, not split.
    No communication.  Raises numpy's AxisError or ValueError (repeats)."""
    count = len(axis) if isinstance(axis, (tuple, list)) else 1
    added = normalize_axis_tuple(axis, a.ndim + count)
    key = tuple(None if ax in added else slice(None) for ax in range(a.ndim + count))
    result: DistArray = getitem(a, key)
    return result


def _operands(arrays: Any, name: str) -> tuple[Any, list[Source], list[np.dtype]]:
    """The world, the sources (an ndarray: the same on every rank, read
    where it is) and the dtypes of a sequence of DistArrays and arrays."""
    items = list(arrays)
    worlds = [item.world for item in items if isinstance(item, DistArray)]
    if not worlds:
        raise TypeError(f"{name} on DistArrays needs at least one DistArray")
    world = worlds[0]
    sources: list[Source] = []
    for item in items:
        if isinstance(item, DistArray):
            sources.append((item.layout, item.local))
        else:
            array = np.asarray(item)
            sources.append((layout_of(array.shape, (None,) * array.ndim, None, world.nprocs)[0], array))
    dtypes = [local.dtype for _, local in sources]
    return world, sources, dtypes


def _joined(world: Any, sources: list[Source], shape: tuple[int, ...], dtype: Any, stream_of: Any,
            kind: int) -> DistArray:
    layout, given = layout_of(shape, "block", None, world.nprocs)
    [local] = regroup(world.engine, kind, [stream_of(np.dtype(dtype))], row_bounds(layout))
    return DistArray._of(world, layout, given, local.reshape(layout.local_shape(world.pid)))


def _result_dtype(dtypes: Sequence[np.dtype], dtype: Any) -> np.dtype:
    return np.dtype(dtype) if dtype is not None else np.result_type(*dtypes)


def _no_out(out: Any, name: str) -> None:
    if out is not None:
        raise TypeError(f"{name} on DistArrays takes no out=: it returns a new DistArray")


@implements(np.concatenate)
def concatenate(arrays: Any, axis: Any = 0, out: Any = None, *, dtype: Any = None,
                casting: Any = "same_kind") -> DistArray:
    """numpy's `np.concatenate(arrays, axis)` (axis None: each flattened)
    of DistArrays of any layouts and ndarrays (the same on every rank): a
    DistArray split "block" along axis 0.  One superstep; h at most the
    elements of a rank's parts or of its result part (an ndarray operand
    is read where it is).  Raises numpy's ValueError for mismatched
    shapes or 0-d operands, AxisError for a bad axis; TypeError for out=."""
    _no_out(out, "concatenate")
    world, sources, dtypes = _operands(arrays, "concatenate")
    shapes = [layout.shape for layout, _ in sources]
    shape: tuple[int, ...] = np.concatenate([shadow(s) for s in shapes], axis=axis).shape
    if axis is None:
        edges = np.cumsum([0] + [math.prod(s) for s in shapes])

        def flat_of(dt: np.dtype) -> Stream:
            return Stream(sources, lambda k, coords: edges[k] + flat_index(coords, shapes[k]),
                          lambda flat: np.searchsorted(edges, flat, side="right") - 1,
                          lambda k, flat: np.unravel_index(flat - edges[k], shapes[k]), dt)
        return _joined(world, sources, shape, _result_dtype(dtypes, dtype), flat_of, superstep_kinds.CONCATENATE)
    along = normalize_axis_index(axis, len(shape))
    starts = np.cumsum([0] + [s[along] for s in shapes])

    def shifted(coords: Any, by: int) -> Any:
        return tuple(c + by if ax == along else c for ax, c in enumerate(coords))

    def stream_of(dt: np.dtype) -> Stream:
        return Stream(sources, lambda k, coords: flat_index(shifted(coords, starts[k]), shape),
                      lambda flat: np.searchsorted(starts, np.unravel_index(flat, shape)[along], side="right") - 1,
                      lambda k, flat: shifted(np.unravel_index(flat, shape), -starts[k]), dt)
    return _joined(world, sources, shape, _result_dtype(dtypes, dtype), stream_of, superstep_kinds.CONCATENATE)


@implements(np.stack)
def stack(arrays: Any, axis: int = 0, out: Any = None, *, dtype: Any = None, casting: Any = "same_kind") -> DistArray:
    """numpy's `np.stack(arrays, axis)` of DistArrays of any layouts and
    ndarrays of one shape: a DistArray split "block" along axis 0.  One
    superstep; h as `concatenate`.  Raises numpy's ValueError for shapes
    that differ or no arrays, AxisError for a bad axis; TypeError for
    out=."""
    _no_out(out, "stack")
    world, sources, dtypes = _operands(arrays, "stack")
    shapes = [layout.shape for layout, _ in sources]
    shape: tuple[int, ...] = np.stack([shadow(s) for s in shapes], axis=axis).shape
    along = normalize_axis_index(axis, len(shape))

    def stream_of(dt: np.dtype) -> Stream:
        return Stream(sources,
                      lambda k, coords: flat_index(coords[:along] + (np.int64(k),) + coords[along:], shape),
                      lambda flat: np.unravel_index(flat, shape)[along],
                      lambda k, flat: tuple(c for ax, c in enumerate(np.unravel_index(flat, shape)) if ax != along),
                      dt)
    return _joined(world, sources, shape, _result_dtype(dtypes, dtype), stream_of, superstep_kinds.CONCATENATE)
