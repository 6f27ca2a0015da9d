"""`Coarray`: a numpy array on every rank, whose parts the other ranks can
put into and get from (BSPlib's registered arrays, Bulk's coarray)."""

from __future__ import annotations

from typing import Any

import numpy as np

from .checks import check_pid
from .engine import Engine
from .future import Future
from .mailbox import Arrival

_PUT, _GET, _REPLY = 0, 1, 2


class Coarray:
    """A numpy array of the same shape and dtype on every rank.  Create with
    `world.coarray(shape, dtype)` (zeros) or `world.coarray(array)` (that
    array becomes this rank's image, not a copy), collectively: every rank
    creates the same data objects, of the same shape and dtype, in the same
    order.

    - `local`: this rank's image, a numpy array.
    - `put(values, dest, index)`, or `xs[dest, index] = values`: write values
      into dest's image at the next sync.
    - `get(source, index)`, or `xs[source, index]`: a Future of a copy of
      that part of source's image, valid after the next sync.

    `index` is numpy basic indexing (ints, slices, Ellipsis; default: the
    whole array), checked against the shape at the call: a slice that runs
    past the end is an IndexError here, not a silent clip.  Array data never
    goes through pickle: it travels as raw bytes.  Gets are served before
    puts, and puts apply in order of source pid, then put order (see Var).
    """

    def __init__(self, engine: Engine, local: np.ndarray):
        if local.dtype.hasobject:
            raise TypeError("a coarray holds numbers, not Python objects (dtype object)")
        self._engine = engine
        self.local = local
        self._channel = engine.create_object(f"coarray{local.shape} {local.dtype.str}", self)
        self._waiting: list[tuple[Future, tuple[int, ...]]] = []

    @property
    def shape(self) -> tuple[int, ...]:
        return self.local.shape

    @property
    def dtype(self) -> np.dtype:
        return self.local.dtype

    def put(self, values: Any, dest: int, index: Any = Ellipsis) -> None:
        """Write `values` (broadcast to the indexed shape, converted to the
        coarray's dtype; copied now) into `index` of dest's image at the next
        sync.  Cost: h grows by the bytes written, here and on dest.  Raises
        ValueError for a bad dest or values of the wrong shape, IndexError
        for an index out of bounds, TypeError for values that do not convert
        to the coarray's dtype without changing kind (float into int, say)."""
        engine = self._engine
        dest = check_pid(dest, engine.nprocs)
        shape = self._indexed_shape(index)
        data = self._converted(values, shape, index)
        engine.post_raw(self._channel, dest, (_PUT, index), _raw(data))

    def get(self, source: int, index: Any = Ellipsis) -> Future:
        """A Future of a copy of `index` of source's image as it is at the end
        of this superstep (before its puts); valid after the next sync, which
        then costs a second barrier (l).  Raises as `put` does."""
        engine = self._engine
        source = check_pid(source, engine.nprocs, "source")
        shape = self._indexed_shape(index)
        future = Future(f"coarray get from rank {source}", engine.superstep)
        engine.post_raw(self._channel, source, (_GET, len(self._waiting), index), None)
        self._waiting.append((future, shape))
        engine.getting = True
        return future

    def __setitem__(self, key: Any, values: Any) -> None:
        dest, index = _split(key)
        self.put(values, dest, index)

    def __getitem__(self, key: Any) -> Future:
        source, index = _split(key)
        return self.get(source, index)

    # -- at the sync (see bsp.engine.Delivering) ----------------------------

    def serve(self, arrivals: list[Arrival]) -> None:
        engine = self._engine
        for source, header, _ in engine.raw_messages(arrivals):
            if header[0] == _GET:
                _, request, index = header
                # dtype: a single element comes out as a numpy scalar, in
                # native byte order, whatever the coarray's order is
                snapshot = np.ascontiguousarray(self.local[index], dtype=self.dtype)
                engine.post_raw(self._channel, source, (_REPLY, request), _raw(snapshot))

    def deliver(self, arrivals: list[Arrival]) -> None:
        for _, header, data in self._engine.raw_messages(arrivals):
            if header[0] == _PUT:
                assert data is not None     # a put always carries data
                index = header[1]
                self.local[index] = np.frombuffer(data, self.dtype).reshape(np.shape(self.local[index]))

    def complete(self, arrivals: list[Arrival]) -> None:
        for _, (_, request), data in self._engine.raw_messages(arrivals):
            assert data is not None         # so does a reply
            future, shape = self._waiting[request]
            future.set(np.frombuffer(data, self.dtype).reshape(shape))
        self._waiting = []

    # -- checks ---------------------------------------------------------------

    def _indexed_shape(self, index: Any) -> tuple[int, ...]:
        parts = index if isinstance(index, tuple) else (index,)
        for part in parts:
            if not (part is Ellipsis or isinstance(part, slice) or _is_int(part)):
                raise TypeError(f"coarray indices are ints, slices and Ellipsis (basic indexing), "
                                f"not {type(part).__name__!r}")
        if Ellipsis in parts:
            at = parts.index(Ellipsis)
            parts = parts[:at] + (slice(None),) * (self.local.ndim - len(parts) + 1) + parts[at + 1:]
        for axis, (part, size) in enumerate(zip(parts, self.local.shape)):
            if isinstance(part, slice):
                _check_slice(part, size, axis)
        return np.shape(self.local[index])

    def _converted(self, values: Any, shape: tuple[int, ...], index: Any) -> np.ndarray:
        values = np.asarray(values)
        if not np.can_cast(values.dtype, self.dtype, "same_kind"):
            raise TypeError(f"cannot put {values.dtype} values into a coarray of {self.dtype} "
                            f"without changing their kind; convert them first")
        try:
            values = np.broadcast_to(values, shape)
        except ValueError:
            raise ValueError(f"cannot put values of shape {values.shape} into index {index!r}, "
                             f"of shape {shape}") from None
        return np.ascontiguousarray(values, dtype=self.dtype)

    def __repr__(self) -> str:
        return f"<bsp.Coarray shape={self.shape} dtype={self.dtype}>"


def _split(key: Any) -> tuple[Any, Any]:
    """xs[rank, index...] -> (rank, index)."""
    if not isinstance(key, tuple):
        return key, Ellipsis
    rank, rest = key[0], key[1:]
    return rank, (rest[0] if len(rest) == 1 else rest) if rest else Ellipsis


def _raw(array: np.ndarray) -> memoryview:
    """The bytes of a contiguous array, as a one-dimensional view.  Through
    numpy, not memoryview.cast, which refuses empty arrays and dtypes the
    buffer protocol cannot describe (datetime64, timedelta64)."""
    return array.reshape(-1).view(np.uint8).data


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def _check_slice(part: slice, size: int, axis: int) -> None:
    for bound in (part.start, part.stop):
        if bound is not None and not -size <= bound <= size:
            raise IndexError(f"slice {part.start}:{part.stop} is out of bounds for axis {axis} of size {size}")
