"""Element puts and gets of a 1-D coarray, batched per rank.

BSPlib programs (BSPedupack's, bspbench) move single elements in loops:
`xs[dest, i] = x`.  Framed one by one, each such put would cost a message
header, a pickle and a capture, several times a `world.send` of the same
float.  Instead, an element put whose destination's shape is known appends
(i, x) to two Python lists for its destination; at the next sync the lists
become one int64 array of indices and one array of values, sent uncopied as
one message, which the destination applies with one numpy assignment.  Gets
of elements batch the same way: one request of indices per source, one
reply of values.

Order is kept: a put that is not an element put flushes its destination's
batch first, so plain, element and `op` puts of one superstep still apply in
put order.  Anything else (an index of another type, a value that would
need numpy's conversion rules, a rank whose shape is not known yet, an index
out of bounds) is left to the general path, which checks and raises.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from bsp.core.buffers import byte_view
from bsp.core.engine import Engine
from bsp.objects.future import Future
from bsp.objects.coarray_index import INDEX_DTYPE

ELEMENTS = 2                    # the kind of a batch on a coarray's channel (see bsp.objects.coarray)
_INDEX_TYPES = frozenset({int, np.int64, np.int32, np.int16, np.int8, np.uint64, np.uint32, np.uint16, np.uint8})
_INT64_MIN, _INT64_MAX = -(1 << 63), (1 << 63) - 1
_GET = "a coarray element get"


def scalar_types(dtype: np.dtype) -> frozenset[type]:
    """The scalar types an element put takes as they are: those that the
    batch's conversion (np.array(values, dtype)) converts exactly as a put
    of any value does (np.asarray(value) cast to dtype).  The dtype's own
    numpy scalar type; Python floats into floating and complex dtypes;
    Python ints (within int64) into int64, float64 and complex128, where
    numpy's cast of an int64 gives the same as its conversion of an int."""
    types = {dtype.type}
    if dtype.kind in "fc":
        types.add(float)
    if dtype in (np.dtype(np.int64), np.dtype(np.float64), np.dtype(np.complex128)):
        types.add(int)
    return frozenset(types)


class Batches:
    """This superstep's element puts and gets of one coarray, per rank.
    `post(dests, header, frames, copy)` and `request(source, header,
    on_reply, frames, copy)` are the coarray's (see bsp.objects.data_object)."""

    def __init__(self, engine: Engine, local: np.ndarray, post: Callable[..., None], request: Callable[..., None]):
        self._engine = engine
        self._dtype = local.dtype
        self._types = scalar_types(local.dtype)
        self._post, self._request = post, request
        self._one_dimensional = local.ndim == 1
        # Image lengths of 1-D coarrays as far as known; -1: not known (or not 1-D).
        self._lengths = [-1] * engine.nprocs
        self.learn(engine.pid, local.shape)
        self._puts: list[tuple[list[int], list[Any]] | None] = [None] * engine.nprocs
        self._gets: list[tuple[list[int], list[Future]] | None] = [None] * engine.nprocs
        self._flushing = False              # whether a flush waits in engine.before_exchange

    def learn(self, pid: int, shape: tuple[int, ...]) -> None:
        """pid's image has this shape."""
        if self._one_dimensional:
            self._lengths[pid] = shape[0]

    def put(self, value: Any, dest: Any, index: Any) -> bool:
        """Queue value for dest's element `index`, if this is an element put
        of a known, fitting kind; False if the general path must decide."""
        if type(index) not in _INDEX_TYPES or type(value) not in self._types or type(dest) not in _INDEX_TYPES:
            return False
        lengths = self._lengths
        if not 0 <= dest < len(lengths):
            return False
        size = lengths[dest]
        if not -size <= index < size or (type(value) is int and not _INT64_MIN <= value <= _INT64_MAX):
            return False
        self._engine.check_caller()
        batch = self._puts[dest] or self._start(self._puts, dest)
        batch[0].append(index + size if index < 0 else index)
        batch[1].append(value)
        return True

    def get(self, source: Any, index: Any) -> Future | None:
        """A Future of source's element `index`, if this is an element get
        of a known, fitting kind; None if the general path must decide."""
        if type(index) not in _INDEX_TYPES or type(source) not in _INDEX_TYPES:
            return None
        lengths = self._lengths
        if not 0 <= source < len(lengths):
            return None
        size = lengths[source]
        if not -size <= index < size:
            return None
        engine = self._engine
        engine.check_caller()
        batch = self._gets[source] or self._start(self._gets, source)
        future = Future(_GET, engine.superstep)
        batch[0].append(index + size if index < 0 else index)
        batch[1].append(future)
        return future

    def _start(self, batches: list[Any], pid: int) -> tuple[list[Any], list[Any]]:
        batch: tuple[list[Any], list[Any]] = ([], [])
        batches[pid] = batch
        if not self._flushing:
            self._engine.before_exchange.append(self._flush)
            self._flushing = True
        return batch

    def send_puts(self, dest: int) -> None:
        """Post dest's element puts now (before a put of another kind)."""
        batch = self._puts[dest]
        if batch is not None:
            self._puts[dest] = None
            indices, values = batch
            frames = [byte_view(np.array(indices, INDEX_DTYPE)), byte_view(np.array(values, self._dtype))]
            self._post((dest,), (ELEMENTS,), frames, copy=False)

    def _send_gets(self, source: int) -> None:
        batch = self._gets[source]
        assert batch is not None        # _flush sends only the batches there are
        indices, futures = batch
        self._gets[source] = None
        self._request(source, (ELEMENTS,), _filler(futures, self._dtype),
                      [byte_view(np.array(indices, INDEX_DTYPE))], copy=False)

    def _flush(self) -> None:
        """At the exchange: post every batch."""
        self._flushing = False
        for pid in range(len(self._puts)):
            self.send_puts(pid)
            if self._gets[pid] is not None:
                self._send_gets(pid)


def _filler(futures: list[Future], dtype: np.dtype) -> Callable[[Any, Sequence[memoryview]], None]:
    """What completes a batch of element gets from its reply."""
    def fill(_: Any, frames: Sequence[memoryview]) -> None:
        values = np.frombuffer(frames[0], dtype)
        for k, future in enumerate(futures):
            future.set(values[k, ...])          # a 0-d array, as a get of one element gives
    return fill


def answer(local: np.ndarray, frames: Sequence[memoryview]) -> memoryview:
    """The reply to a batch of element gets: the elements asked for."""
    return byte_view(local[np.frombuffer(frames[0], INDEX_DTYPE)])


def apply(local: np.ndarray, frames: Sequence[memoryview]) -> None:
    """Apply a batch of element puts (a repeated index: the last wins)."""
    local[np.frombuffer(frames[0], INDEX_DTYPE)] = np.frombuffer(frames[1], local.dtype)
