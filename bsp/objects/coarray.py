"""`Coarray`: a numpy array on every rank, whose parts the other ranks can
put into and get from (BSPlib's registered arrays, Bulk's coarray)."""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from bsp.objects import coarray_elements
from bsp.base.callsite import user_call_site
from bsp.base.argument_checks import check_pid
from bsp.objects.data_object import DataObject
from bsp.core.engine import Engine
from bsp.errors import BSPError
from bsp.objects.future import Future
from bsp.core.mailbox import Arrival
from bsp.core.buffers import byte_view as _raw
from bsp.objects.coarray_index import Index, bound, from_wire, parse, to_wire

# The kinds of data and requests on a coarray's channel (and coarray_elements.ELEMENTS).
_SHAPE, _PUT, _GET = 0, 1, 3


class Coarray(DataObject):
    """A numpy array on every rank, of one dtype and number of dimensions;
    its shape may differ from rank to rank.  Create with
    `world.coarray(shape, dtype)` (zeros) or `world.coarray(array)` (that
    array becomes this rank's image, not a copy), collectively: every rank
    creates the same data objects, of the same dtype and ndim, in the same
    order (SyncMismatchError otherwise).

    - `local`: this rank's image, a numpy array.
    - `shape_of(pid)`: the shape of pid's image.
    - `put(values, dest, index, op=None)`, or `xs[dest, index] = values`:
      write values into dest's image at the next sync; with `op` (a numpy
      ufunc), combine them: image[index] = op(image[index], values), as
      `op.at` does, so repeated indices combine.
    - `get(source, index)`, or `xs[source, index]`: a Future of a copy of
      that part of source's image, valid after the next sync.

    `index` is numpy basic indexing (ints, slices, Ellipsis; default: the
    whole array) or numpy's integer-array indexing (a scatter or a gather:
    `xs.put(rows, dest, np.array([4, 0, 2]))` writes three whole rows, as
    `image[[4, 0, 2]] = rows` does; arrays, ints and slices mix as in
    numpy), checked against the destination's shape: at the call once that shape is
    known, which is from the sync after the coarray's creation on; before
    that, at that sync, where a bad index raises on the rank that made the
    put or get, naming its call site.  A slice that runs past the end is an
    IndexError, never clipped.  Array data never goes through pickle.

    Within a sync, gets are served first, from the images as they were at
    the end of the superstep; then the puts are applied, plain and `op`
    puts alike, in order of source pid, then put order (so with repeated
    indices and no `op`, the last put wins).  Element puts and gets
    (`xs[dest, i] = x` on a 1-D coarray) are batched per rank and cost a
    fraction of a message each.
    """

    def __init__(self, engine: Engine, local: np.ndarray):
        if local.dtype.hasobject:
            raise TypeError("a coarray holds numbers, not Python objects (dtype object)")
        super().__init__(engine, f"coarray ({local.ndim}-D {local.dtype})")
        self.local = local
        self._shapes: list[tuple[int, ...] | None] = [None] * engine.nprocs
        self._shapes[engine.pid] = local.shape
        self._unchecked: list[_Unchecked] = []      # made before the shape they need was known
        self._checked_ops: set[tuple[np.ufunc, np.dtype]] = set()
        self._elements = coarray_elements.Batches(engine, local, self._post, self._request)
        others = [pid for pid in range(engine.nprocs) if pid != engine.pid]
        if others:
            self._post(others, (_SHAPE, local.shape))

    @property
    def shape(self) -> tuple[int, ...]:
        """This rank's image shape."""
        return self.local.shape

    @property
    def dtype(self) -> np.dtype:
        return self.local.dtype

    def shape_of(self, pid: int) -> tuple[int, ...]:
        """The shape of pid's image: this rank's at once, the others' from
        the sync after the coarray's creation on (BSPError before)."""
        pid = check_pid(pid, self._engine.nprocs, "pid")
        shape = self._shapes[pid]
        if shape is None:
            raise BSPError(f"the shape of rank {pid}'s image is known from the sync after the coarray was "
                           f"created (images may differ in shape from rank to rank)")
        return shape

    # -- puts ---------------------------------------------------------------

    def put(self, values: Any, dest: int, index: Any = Ellipsis, op: np.ufunc | None = None) -> None:
        """Write `values` (broadcast to the indexed shape, converted to the
        coarray's dtype; copied now) into `index` of dest's image at the
        next sync, or with `op`, set image[index] = op(image[index], values)
        there (`op.at` semantics: repeated indices combine, in order).
        Cost: h grows by the bytes written (and 8 per index for integer
        arrays; 16 per element put), here and on dest.  Raises ValueError for
        a bad dest or values of the wrong shape, IndexError for an index out
        of bounds, TypeError for an index that is not one, values that do not
        convert to the coarray's dtype without changing kind (float into
        int, say), or an `op` that is not a binary numpy ufunc or cannot
        combine these dtypes."""
        if op is None and self._elements.put(values, dest, index):
            return
        dest = check_pid(dest, self._engine.nprocs)
        parsed = parse(index, self.local.ndim)
        values = self._values(values, op)
        self._elements.send_puts(dest)          # element puts before this one stay before it
        shape = self._shapes[dest]
        if shape is None:
            self._put_unchecked(values, dest, parsed, index, op)
            return
        target = bound(parsed, shape, f"rank {dest}'s image")
        data = _shaped(values, target.shape, index, self.dtype if op is None else values.dtype)
        where, frames = _wired(target.where, target.advanced)
        header = (_PUT, where, target.advanced, data.shape, op, _wire_dtype(data.dtype, self.dtype), True)
        self._post((dest,), header, [*frames, _raw(data)])

    def _put_unchecked(self, values: np.ndarray, dest: int, parsed: Index, index: Any, op: np.ufunc | None) -> None:
        """A put whose destination's shape is not known yet: dest checks it
        against its image at the sync, and skips it if it does not fit;
        this rank checks it then too, and raises."""
        data = np.asarray(values, self.dtype if op is None else values.dtype, order="C")
        where, frames = _wired(parsed.parts, parsed.advanced)
        self._unchecked.append(_Unchecked("put", dest, parsed, values.shape, user_call_site(), None))
        header = (_PUT, where, parsed.advanced, data.shape, op, _wire_dtype(data.dtype, self.dtype), False)
        self._post((dest,), header, [*frames, _raw(data)])

    def _values(self, values: Any, op: np.ufunc | None) -> np.ndarray:
        values = np.asarray(values)
        if values.size and not np.can_cast(values.dtype, self.dtype, "same_kind"):    # np.asarray([]) is float
            raise TypeError(f"cannot put {values.dtype} values into a coarray of {self.dtype} "
                            f"without changing their kind; convert them first")
        if op is not None:
            self._check_op(op, values.dtype)
        array: np.ndarray = values
        return array

    def _check_op(self, op: Any, dtype: np.dtype) -> None:
        """A binary ufunc whose result casts back to the coarray's dtype
        under numpy's 'same_kind' rule (tried once per op and dtype)."""
        if not isinstance(op, np.ufunc):
            raise TypeError(f"op must be a numpy ufunc (np.add, np.maximum, ...), not {type(op).__name__!r}")
        if op.nin != 2 or op.nout != 1:
            raise TypeError(f"op must be a binary numpy ufunc (two inputs, one output); "
                            f"{op.__name__} takes {op.nin} and gives {op.nout}")
        if (op, dtype) not in self._checked_ops:
            image = np.zeros(1, self.dtype)
            try:
                op(image, np.ones(1, dtype), out=image)
            except TypeError as error:
                raise TypeError(f"op {op.__name__} cannot combine {dtype} values into a coarray of "
                                f"{self.dtype}: {error}") from None
            self._checked_ops.add((op, dtype))

    def __setitem__(self, key: Any, values: Any) -> None:
        if type(key) is tuple and len(key) == 2 and self._elements.put(values, key[0], key[1]):
            return
        dest, index = _split(key)
        self.put(values, dest, index)

    # -- gets ---------------------------------------------------------------

    def get(self, source: int, index: Any = Ellipsis) -> Future:
        """A Future of a copy of `index` of source's image (an array of the
        coarray's dtype; 0-d for an element) as it is at the end of this superstep
        (before its puts); valid after the next sync, which then costs a
        second barrier (l).  Cost: h grows by the bytes read, on source and
        here.  Raises as `put` does."""
        future = self._elements.get(source, index)
        if future is not None:
            return future
        engine = self._engine
        source = check_pid(source, engine.nprocs, "source")
        parsed = parse(index, self.local.ndim)
        future = Future(f"coarray get from rank {source}", engine.superstep)
        shape = self._shapes[source]
        if shape is None:
            reply = _Reply(future, self.dtype, None)
            self._unchecked.append(_Unchecked("get", source, parsed, None, user_call_site(), reply))
            where, advanced, checked = parsed.parts, parsed.advanced, False
        else:
            target = bound(parsed, shape, f"rank {source}'s image")
            reply = _Reply(future, self.dtype, target.shape)
            where, advanced, checked = target.where, target.advanced, True
        wired, frames = _wired(where, advanced)
        self._request(source, (_GET, wired, advanced, checked), reply.arrived, frames)
        return future

    def __getitem__(self, key: Any) -> Future:
        if type(key) is tuple and len(key) == 2:
            future = self._elements.get(key[0], key[1])
            if future is not None:
                return future
        source, index = _split(key)
        return self.get(source, index)

    # -- at the sync (see bsp.objects.data_object) --------------------------------------

    def _apply(self, source: int, header: tuple[Any, ...], frames: list[memoryview]) -> None:
        kind = header[0]
        if kind == coarray_elements.ELEMENTS:
            coarray_elements.apply(self.local, frames)
        elif kind == _PUT:
            self._apply_put(header, frames)
        elif kind == _SHAPE:
            self._shapes[source] = header[1]
            self._elements.learn(source, header[1])

    def _apply_put(self, header: tuple[Any, ...], frames: list[memoryview]) -> None:
        _, where, advanced, shape, op, dtype, checked = header
        index = _unwired(where, advanced, frames)
        values = np.frombuffer(frames[-1], self.dtype if dtype is None else dtype).reshape(shape)
        where = index.parts
        if not checked:
            try:
                target = bound(index, self.local.shape, "this image")
                values = np.broadcast_to(values, target.shape)
            except (IndexError, ValueError):
                return                  # the putting rank raises this at this sync
            where = target.where
        if op is None:
            self.local[where] = values
        else:
            op.at(self.local, where, values)

    def _answer(self, source: int, header: tuple[Any, ...], frames: list[memoryview]
                ) -> tuple[Any, Sequence[memoryview], bool]:
        if header[0] == coarray_elements.ELEMENTS:
            return None, [coarray_elements.answer(self.local, frames)], False
        _, wired, advanced, checked = header
        index = _unwired(wired, advanced, frames)
        where = index.parts
        if not checked:
            try:
                where = bound(index, self.local.shape, "this image").where
            except IndexError:
                return None, (), False          # the getting rank raises this at this sync
        # dtype: a single element comes out as a numpy scalar, in native
        # byte order, whatever the coarray's order is
        data = np.asarray(self.local[where], dtype=self.dtype, order="C")
        return True, [_raw(data)], np.may_share_memory(data, self.local)

    def deliver(self, arrivals: list[Arrival]) -> None:
        super().deliver(arrivals)
        if self._unchecked:
            self._check_unchecked()

    def _check_unchecked(self) -> None:
        """The puts and gets this rank made before it knew their ranks'
        shapes, checked now that it does: raise the first that does not fit
        (the other rank skipped it), naming where it was made."""
        unchecked, self._unchecked = self._unchecked, []
        for what, pid, index, values_shape, site, reply in unchecked:
            shape = self._shapes[pid]
            assert shape is not None        # every rank's shape arrived at this sync
            try:
                target = bound(index, shape, f"rank {pid}'s image")
                if values_shape is not None:
                    _check_broadcast(values_shape, target.shape, index)
            except (IndexError, ValueError) as error:
                raise type(error)(f"{error}, in the coarray {what} at {site} "
                                  f"(checked at the sync: rank {pid}'s shape was not known yet)") from None
            if reply is not None:
                reply.shape = target.shape

    def __repr__(self) -> str:
        return f"<bsp.Coarray shape={self.shape} dtype={self.dtype}>"


class _Unchecked(NamedTuple):
    what: str                       # "put" or "get"
    pid: int                        # the rank whose image it indexes
    parsed: Index
    values_shape: tuple[int, ...] | None        # a put's values, before broadcasting
    site: str
    reply: "_Reply | None"          # a get's


class _Reply:
    """Where the reply to a (non-element) get goes."""

    def __init__(self, future: Future, dtype: np.dtype, shape: tuple[int, ...] | None):
        self.future, self.dtype, self.shape = future, dtype, shape

    def arrived(self, found: Any, frames: list[memoryview]) -> None:
        if found is None:
            return          # refused: out of bounds, raised on this rank at this sync
        self.future.set(np.frombuffer(frames[0], self.dtype).reshape(self.shape))


def _wired(where: tuple[Any, ...], advanced: bool) -> tuple[tuple[Any, ...], list[memoryview]]:
    """An index for a header, with the frame of its int arrays (none for basic indexing)."""
    if not advanced:
        return where, []
    layout, rows = to_wire(where)
    return layout, [_raw(rows)]


def _unwired(where: tuple[Any, ...], advanced: bool, frames: list[memoryview]) -> Index:
    """The Index that `_wired` sent."""
    return Index(from_wire(where, frames[0]) if advanced else where, advanced)


def _shaped(values: np.ndarray, shape: tuple[int, ...], index: Any, dtype: np.dtype) -> np.ndarray:
    _check_broadcast(values.shape, shape, index)
    return np.asarray(np.broadcast_to(values, shape), dtype, order="C")


def _check_broadcast(values_shape: tuple[int, ...], shape: tuple[int, ...], index: Any) -> None:
    try:
        fits = np.broadcast_shapes(values_shape, shape) == shape
    except ValueError:
        fits = False
    if not fits:
        raise ValueError(f"cannot put values of shape {values_shape} into index {_describe(index)}, "
                         f"of shape {shape}")


def _describe(index: Any) -> str:
    if isinstance(index, Index):
        return "the integer arrays given" if index.advanced else repr(index.parts)
    return repr(index)


def _wire_dtype(dtype: np.dtype, own: np.dtype) -> np.dtype | None:
    """A put's values' dtype in its header: None for the coarray's own (a
    dtype object, not its .str, which loses the fields of structured ones)."""
    return None if dtype == own else dtype


def _split(key: Any) -> tuple[Any, Any]:
    """xs[rank, index...] -> (rank, index)."""
    if not isinstance(key, tuple):
        return key, Ellipsis
    rank, rest = key[0], key[1:]
    return rank, (rest[0] if len(rest) == 1 else rest) if rest else Ellipsis
