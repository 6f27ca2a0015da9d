"""Coarray indices: parsed at the call, checked against an image's shape.

An index is numpy basic indexing (ints, slices, Ellipsis, one per axis) or
numpy's integer-array (advanced) indexing: int arrays, with ints, slices and
an Ellipsis among them, fewer than one per axis allowed (`image[[4, 0, 2]]`
picks three rows); the arrays and ints broadcast together, and the selected
shape puts their broadcast shape where numpy does (in place of adjacent
arrays, else first).  `parse` checks what does not depend on the shape of the image
(types, number of axes, broadcasting) and raises at the call; `bound` checks
it against a shape, which for another rank's image may be known only at the
sync after the coarray was created.  Out-of-bounds indices raise
IndexError: a slice that runs past the end is never clipped.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np

INDEX_DTYPE = np.dtype(np.int64)


class Index(NamedTuple):
    """A parsed index.  Basic: `parts` holds one int or slice per axis.
    Integer arrays: one int64 array per axis, all of the same shape."""

    parts: tuple[Any, ...]
    advanced: bool


class Target(NamedTuple):
    """An index checked against a shape: `where` is what numpy indexes the
    image with (ints made non-negative; integer arrays made non-negative and
    flat), `shape` the shape of what it selects."""

    where: tuple[Any, ...]
    shape: tuple[int, ...]
    advanced: bool


def parse(index: Any, ndim: int) -> Index:
    """Raises TypeError for what is not an index, IndexError for too many
    indices or index arrays that do not broadcast together (as numpy does)."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(part, (np.ndarray, list)) for part in parts):
        return _parse_arrays(parts, ndim)
    for part in parts:
        if not (part is Ellipsis or isinstance(part, slice) or is_int(part)):
            raise TypeError(f"coarray indices are ints, slices and Ellipsis (basic indexing), or integer "
                            f"arrays, not {type(part).__name__!r}")
        if isinstance(part, slice) and part.step == 0:
            raise ValueError("a coarray index slice cannot have step 0")
    return Index(tuple(int(part) if is_int(part) else part for part in _one_per_axis(parts, ndim)), False)


def _parse_arrays(parts: tuple[Any, ...], ndim: int) -> Index:
    """An advanced index: one part per axis (Ellipsis expanded, the rest
    padded with slices), its int arrays int64 and broadcast together."""
    arrays = {}
    for axis, part in enumerate(parts):
        if part is None:
            raise TypeError("a coarray index cannot hold None (np.newaxis): images keep their shape")
        if isinstance(part, slice) or part is Ellipsis:
            if isinstance(part, slice) and part.step == 0:
                raise ValueError("a coarray index slice cannot have step 0")
            continue
        array = np.asarray(part)
        if array.dtype.kind == "b":
            raise TypeError("boolean masks are not coarray indices: use np.flatnonzero(mask)")
        if array.dtype.kind not in "iu" and (array.size or array.dtype.kind != "f"):   # np.asarray([]) is float
            raise TypeError(f"coarray index arrays hold integers, not {array.dtype}")
        arrays[axis] = array.astype(INDEX_DTYPE, copy=False)
    try:
        broadcast = dict(zip(arrays, np.broadcast_arrays(*arrays.values())))
    except ValueError:
        shapes = " ".join(str(array.shape) for array in arrays.values())
        raise IndexError(f"shape mismatch: coarray index arrays could not be broadcast together with shapes "
                         f"{shapes}") from None
    whole = tuple(broadcast.get(axis, part) for axis, part in enumerate(parts))
    return Index(_one_per_axis(whole, ndim), True)


def _one_per_axis(parts: tuple[Any, ...], ndim: int) -> tuple[Any, ...]:
    """`parts` with its Ellipsis (at most one) expanded and slices added up
    to `ndim`; IndexError for more parts than axes."""
    if sum(part is Ellipsis for part in parts) > 1:
        raise IndexError("a coarray index can only have a single Ellipsis (...)")
    if any(part is Ellipsis for part in parts):
        at = next(position for position, part in enumerate(parts) if part is Ellipsis)
        parts = parts[:at] + (slice(None),) * (ndim - len(parts) + 1) + parts[at + 1:]
    if len(parts) > ndim:
        raise IndexError(f"too many indices for a coarray of {ndim} dimension(s): {len(parts)} were given")
    return parts + (slice(None),) * (ndim - len(parts))


def bound(index: Index, shape: tuple[int, ...], whose: str) -> Target:
    """`index` checked against `shape`, the shape of `whose` image (for
    messages: "rank 1's image").  Raises IndexError naming the index and
    the shape."""
    if index.advanced:
        return _bound_arrays(index.parts, shape, whose)
    normalized, selected = [], []
    for axis, (part, size) in enumerate(zip(index.parts, shape)):
        if isinstance(part, slice):
            _check_slice(part, size, axis, shape, whose)
            normalized.append(part)
            selected.append(len(range(*part.indices(size))))
        else:
            if not -size <= part < size:
                raise IndexError(f"index {part} is out of bounds for axis {axis} of size {size} "
                                 f"({whose} has shape {shape})")
            normalized.append(part + size if part < 0 else part)
    return Target(tuple(normalized), tuple(selected), False)


def _bound_arrays(parts: tuple[Any, ...], shape: tuple[int, ...], whose: str) -> Target:
    """An advanced index checked against `shape`: its ints and arrays made
    non-negative; the selected shape as numpy's (the arrays' broadcast
    shape in place of the arrays when they are adjacent, else first)."""
    where: list[Any] = []
    sliced: list[int] = []
    advanced_axes = []
    for axis, (part, size) in enumerate(zip(parts, shape)):
        if isinstance(part, slice):
            _check_slice(part, size, axis, shape, whose)
            where.append(part)
            sliced.append(len(range(*part.indices(size))))
            continue
        advanced_axes.append(axis)
        array = np.asarray(part)
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < -size or high >= size:
                raise IndexError(f"index {high if high >= size else low} is out of bounds for axis {axis} of "
                                 f"size {size} ({whose} has shape {shape})")
            if low < 0:
                part = np.where(array < 0, array + size, array) if array.ndim else int(array) + size
        where.append(part)
    picked = np.broadcast_shapes(*(np.shape(where[axis]) for axis in advanced_axes))
    first = advanced_axes[0]
    if advanced_axes != list(range(first, first + len(advanced_axes))):
        first = 0               # separated by a slice: numpy puts the picked axes first
    before = sum(1 for axis in range(first) if isinstance(parts[axis], slice))
    return Target(tuple(where), (*sliced[:before], *picked, *sliced[before:]), True)


def _check_slice(part: slice, size: int, axis: int, shape: tuple[int, ...], whose: str) -> None:
    """Python clips slice bounds to the axis; a coarray index may not run
    past it: a start or stop outside -size..size is an IndexError."""
    for bound_ in (part.start, part.stop):
        if bound_ is not None and not -size <= bound_ <= size:
            raise IndexError(f"slice {_show(part)} is out of bounds for axis {axis} of size {size} "
                             f"({whose} has shape {shape})")


def _show(part: slice) -> str:
    text = f"{part.start}:{part.stop}"
    return text if part.step is None else f"{text}:{part.step}"


def is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def to_wire(parts: tuple[Any, ...]) -> tuple[tuple[Any, ...], np.ndarray]:
    """An advanced index (of an Index or a Target) for the wire: its parts
    with each int array replaced by its shape in a list, and the arrays as
    one contiguous int64 array, a row per array."""
    arrays = [np.reshape(part, -1) for part in parts if isinstance(part, np.ndarray)]
    layout = tuple([list(part.shape)] if isinstance(part, np.ndarray) else part for part in parts)
    rows = np.stack(arrays) if arrays else np.empty((0, 0))
    return layout, np.ascontiguousarray(rows, INDEX_DTYPE)


def from_wire(layout: tuple[Any, ...], data: memoryview) -> tuple[Any, ...]:
    """The parts that `to_wire` sent, from its layout and the bytes that arrived."""
    shapes = [part[0] for part in layout if isinstance(part, list)]
    rows = iter(np.frombuffer(data, INDEX_DTYPE).reshape(len(shapes), -1) if shapes else ())
    return tuple(next(rows).reshape(part[0]) if isinstance(part, list) else part for part in layout)
