"""Coarray indices: parsed at the call, checked against an image's shape.

An index is numpy basic indexing (ints, slices, Ellipsis, one per axis) or
integer-array indexing (one int array for a 1-D coarray, or a tuple of int
arrays, or ints among them, one per axis; they broadcast together, as in
numpy).  `parse` checks what does not depend on the shape of the image
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
    indices, ValueError for index arrays that do not broadcast together."""
    parts = index if isinstance(index, tuple) else (index,)
    if any(isinstance(part, (np.ndarray, list)) for part in parts):
        return _parse_arrays(parts, ndim)
    for part in parts:
        if not (part is Ellipsis or isinstance(part, slice) or is_int(part)):
            raise TypeError(f"coarray indices are ints, slices and Ellipsis (basic indexing), or integer "
                            f"arrays, not {type(part).__name__!r}")
        if isinstance(part, slice) and part.step == 0:
            raise ValueError("a coarray index slice cannot have step 0")
    if parts.count(Ellipsis) > 1:
        raise IndexError("a coarray index can only have a single Ellipsis (...)")
    if Ellipsis in parts:
        at = parts.index(Ellipsis)
        parts = parts[:at] + (slice(None),) * (ndim - len(parts) + 1) + parts[at + 1:]
    if len(parts) > ndim:
        raise IndexError(f"too many indices for a coarray of {ndim} dimension(s): {len(parts)} were given")
    return Index(tuple(int(part) if is_int(part) else part for part in parts)
                 + (slice(None),) * (ndim - len(parts)), False)


def _parse_arrays(parts: tuple[Any, ...], ndim: int) -> Index:
    if len(parts) != ndim:
        raise TypeError(f"an integer-array index of a coarray of {ndim} dimension(s) needs one integer array "
                        f"(or int) per axis, {ndim} in all, not {len(parts)}")
    arrays = []
    for part in parts:
        if isinstance(part, (slice, type(Ellipsis))) or part is None:
            raise TypeError("a coarray index cannot mix integer arrays with slices or Ellipsis: "
                            "give one integer array (or int) per axis")
        array = np.asarray(part)
        if array.dtype.kind == "b":
            raise TypeError("boolean masks are not coarray indices: use np.flatnonzero(mask)")
        if array.dtype.kind not in "iu" and array.size:
            raise TypeError(f"coarray index arrays hold integers, not {array.dtype}")
        arrays.append(array.astype(INDEX_DTYPE, copy=False))
    try:
        broadcast = tuple(np.broadcast_arrays(*arrays))
    except ValueError:
        shapes = " and ".join(str(array.shape) for array in arrays)
        raise ValueError(f"coarray index arrays of shapes {shapes} do not broadcast together") from None
    return Index(broadcast, True)


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


def _bound_arrays(arrays: tuple[Any, ...], shape: tuple[int, ...], whose: str) -> Target:
    flat = []
    for axis, (array, size) in enumerate(zip(arrays, shape)):
        array = array.reshape(-1)
        if array.size:
            low, high = int(array.min()), int(array.max())
            if low < -size or high >= size:
                bad = high if high >= size else low
                raise IndexError(f"index {bad} is out of bounds for axis {axis} of size {size} "
                                 f"({whose} has shape {shape})")
            if low < 0:
                array = np.where(array < 0, array + size, array)
        flat.append(array)
    return Target(tuple(flat), arrays[0].shape if arrays else (), True)


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


def wire_arrays(arrays: tuple[Any, ...]) -> np.ndarray:
    """Integer arrays of one shape, one per axis (of an Index or a Target),
    as one contiguous int64 array for the wire: a row per axis."""
    if not arrays:
        return np.empty(0, INDEX_DTYPE)
    return np.ascontiguousarray(np.stack([np.reshape(array, -1) for array in arrays]), INDEX_DTYPE)


def from_wire(data: memoryview, ndim: int) -> tuple[Any, ...]:
    """The rows of `wire_arrays`, from the bytes that arrived."""
    rows = np.frombuffer(data, INDEX_DTYPE)
    return tuple(rows.reshape(ndim, -1)) if ndim else ()
