"""Serialization of Python objects for sending: pickle protocol 5 with
out-of-band buffers, and dill as the fallback for what pickle refuses.

`dumps` returns the in-band pickle and the large buffers it refers to
(numpy array data, `pickle.PickleBuffer`s) *without copying them*: the caller
decides where their bytes go (shared memory, an MPI buffer).  Buffers below
`INBAND_LIMIT` bytes are copied into the pickle itself, where a separate
buffer would cost more than it saves.  Plain numpy arrays get a pickle
written by hand, with a higher limit (`bsp.core.plain_arrays`).

dill is many times slower than pickle on plain data, so it is only tried when
pickle fails.  Its output is wrapped in a plain pickle (`_undill` rebuilds it),
so every receiver reads every message with the standard unpickler.  dill
pickles numpy arrays in-band, so a message that needs dill (a lambda, a
closure) carries any arrays inside it as a copy in the pickle.
"""

from __future__ import annotations

import io
import pickle
import struct
import sys
from typing import Any, Callable, Final, Iterable, Iterator

from bsp.core import plain_arrays
from bsp.core.dill_pickler import dill_pickler

INBAND_LIMIT = 4096

# What pickle raises when it refuses an object (lambdas, closures, local
# classes, objects with no reduce support).
_REFUSALS = (pickle.PicklingError, TypeError, AttributeError)


def dumps(obj: Any, array_bulk_from: int = plain_arrays.INBAND_LIMIT) -> tuple[bytes, list[memoryview]]:
    """Serialize `obj`; return the pickle and its out-of-band buffers (the
    data of a plain array of `array_bulk_from` bytes or more is one).

    The buffers are views of the object's own memory: capture (copy) them
    before the object can change.  Raises TypeError naming the type that
    neither pickle nor dill can serialize, and ValueError for structures
    nested too deeply to serialize.
    """
    fast = plain_arrays.dumps(obj, array_bulk_from)     # a plain array: its pickle written by hand
    if fast is not None:
        return fast
    buffers: list[memoryview] = []
    try:
        return pickle.dumps(obj, 5, buffer_callback=_collector(buffers)), buffers
    except RecursionError:
        raise ValueError(f"cannot serialize {_name(obj)}: it is nested too deeply "
                         "(Python's recursion limit was reached while pickling it)") from None
    except _REFUSALS as refusal:
        buffers.clear()
        return _dumps_with_dill(obj, refusal, buffers), buffers


def dill_dumps(obj: Any, main_by_name: bool = True) -> bytes:
    """`obj` as a dill pickle (read it back with `dill_loads`).  A function
    sent by value has the `__main__` of the process that loads it as its
    globals (dill's default, not its recurse setting), so that functions
    keep sharing one module namespace (see bsp.core.main_namespace).
    `main_by_name`: functions and classes that `__main__` holds travel by
    name (False: by value, for bsp.core.main_namespace, which sends them).
    Costs a dill pickle: many times pickle's.  Raises what dill raises for
    what it cannot carry."""
    file = io.BytesIO()
    dill_pickler(main_by_name)(file, 5).dump(obj)
    return file.getvalue()


def dill_loads(data: bytes | memoryview) -> Any:
    """Rebuild an object pickled by `dill_dumps`."""
    return _undill(bytes(data))


def loads(data: bytes | memoryview, buffers: Iterable[memoryview] = ()) -> Any:
    """Rebuild one object serialized by `dumps`."""
    return pickle.loads(data, buffers=buffers)


def load_stream(stream: bytes | memoryview, count: int, buffers: Iterable[memoryview] = ()) -> Iterable[Any]:
    """Rebuild the `count` objects serialized one after another into
    `stream` (by `dumps`, or several at once by `dumps_batch`); `buffers`
    are all their out-of-band buffers, in order.

    Each pickle gets an unpickler of its own: an unpickler's memo outlives
    `load`, and since protocol 4 a pickle numbers its memo entries from the
    memo's current length, so a shared unpickler would resolve the second
    object's back-references (repeated keys, shared sublists) to the first
    object's entries.  All of them read the same file and buffer iterator,
    each from where the previous one stopped.
    """
    if len(stream) and stream[0] == _BATCH:
        batch: list[Any] = pickle.loads(stream[1:])     # a batch has no out-of-band buffers
        if len(batch) == count:             # the commonest stream: one batch and nothing else
            return batch
    elif len(stream) == _FLOATS_HEAD + 8 * count and stream[0] == _FLOATS:
        return _floats(stream, _FLOATS_HEAD, count)     # or one batch of floats
    elif count == 1:                        # or one message
        pending = iter(buffers)
        array = plain_arrays.load_at(stream, 0, pending)        # an array, read without an unpickler
        return (pickle.loads(stream, buffers=pending) if array is None else array[0],)
    return _load_all(stream, buffers)


def load_objects(stream: bytes | memoryview, count: int, buffers: Iterable[memoryview] = ()) -> list[Any]:
    """`load_stream`'s objects, as a list (the commonest stream's is its own)."""
    loaded = load_stream(stream, count, buffers)
    return loaded if type(loaded) is list else list(loaded)


def _load_all(stream: bytes | memoryview, buffers: Iterable[memoryview]) -> Iterator[Any]:
    pending, end = iter(buffers), len(stream)
    file: io.BytesIO | None = None          # made for the first pickle that is not a plain array (a copy of the stream)
    position = 0
    while position < end:
        if stream[position] == _FLOATS:
            count: int = _FLOATS_COUNT.unpack_from(stream, position + 1)[0]
            yield from _floats(stream, position + _FLOATS_HEAD, count)
            position += _FLOATS_HEAD + 8 * count
            continue
        array = plain_arrays.load_at(stream, position, pending)
        if array is not None:
            yield array[0]
            position = array[1]
            continue
        if file is None:
            file = io.BytesIO(stream)
        if stream[position] == _BATCH:
            file.seek(position + 1)
            yield from pickle.Unpickler(file).load()
        else:
            file.seek(position)
            yield pickle.Unpickler(file, buffers=pending).load()
        position = file.tell()


# Objects that cannot change once made, so that their pickling may wait
# until the sync and be shared by every such message of a superstep
# (`dumps_batch`): a message is a copy whether it is pickled at the send
# or later.  Exact types only: a subclass may be mutable.
IMMUTABLE = frozenset({int, float, complex, bool, str, bytes, type(None)})


def deferrable(obj: Any) -> bool:
    """Whether `obj` is an immutable scalar, or a tuple of them."""
    kind = type(obj)
    if kind in IMMUTABLE:
        return True
    return kind is tuple and len(obj) <= 8 and all(type(item) in IMMUTABLE for item in obj)


# A batch (`dumps_batch`) is this byte, then the pickle of a plain list of its
# messages.  A pickle (protocol 2 on) begins with the PROTO opcode, 0x80, so a
# reader tells a batch from a message by its first byte.  (A list subclass
# marking the batch cost four times the list's pickling and loading, in
# copyreg and in finding the class.)
BATCH_MARK: Final = b"B"
_BATCH: Final = BATCH_MARK[0]


# A batch of floats alone (`dumps_floats`) is this byte, their number (int64)
# and their IEEE doubles, little-endian: the commonest batch of a numeric
# program, a float per message, packs in three quarters of the instructions
# of its pickling and reads back in three fifths of those of its loading.
FLOATS_MARK: Final = b"F"
_FLOATS: Final = FLOATS_MARK[0]
_FLOATS_COUNT: Final = struct.Struct("<q")
_FLOATS_HEAD: Final = 9          # the mark and the count
assert _FLOATS_HEAD == len(FLOATS_MARK) + _FLOATS_COUNT.size
_LITTLE_ENDIAN: Final = sys.byteorder == "little"


_PACKERS: Final[dict[int, struct.Struct]] = {}      # by count: the Struct of that many doubles
_PACKERS_KEPT: Final = 64


def _packer(count: int) -> struct.Struct:
    packer = _PACKERS.get(count)
    if packer is None:
        if len(_PACKERS) >= _PACKERS_KEPT:
            _PACKERS.clear()
        packer = _PACKERS[count] = struct.Struct(f"<{count}d")
    return packer


def dumps_floats(floats: list[float]) -> bytes:
    """The batch of `floats` (exact floats, see `Section.defer`), which
    `load_stream` yields as len(floats) messages, each a float of its own.
    (The head is joined to the doubles after: packing it with them, in one
    Struct, cost more in arguments than the join's copy: 12,900 against
    11,700 instructions for 100 floats.)"""
    count = len(floats)
    return FLOATS_MARK + _FLOATS_COUNT.pack(count) + _packer(count).pack(*floats)


def _floats(stream: bytes | memoryview, start: int, count: int) -> list[Any]:
    """The `count` floats packed from `start` in `stream` (`dumps_floats`)."""
    packed = memoryview(stream)[start:start + 8 * count]
    if count < 0 or len(packed) != 8 * count:      # (a view of bytes: its length is its bytes')
        raise ValueError(f"a batch of {count} floats with {len(packed)} bytes of them: the block is damaged")
    if _LITTLE_ENDIAN:
        floats: list[Any] = packed.cast("d").tolist()    # (typeshed's tolist() says int)
        return floats
    return unpack_floats(packed, count)


def unpack_floats(packed: memoryview, count: int) -> list[Any]:
    """The `count` little-endian doubles of `packed`, on a machine of either byte order."""
    return list(_packer(count).unpack(packed))


def dumps_batch(objs: list[Any]) -> bytes:
    """One pickle of the deferrable `objs` (see `deferrable`), which
    `load_stream` yields as len(objs) messages: one pickle call per
    superstep instead of one per message."""
    return BATCH_MARK + pickle.dumps(objs, 5)


def shares_objects(objs: list[Any]) -> bool:
    """Whether two of the deferrable `objs` hold one bytes or tuple object
    (one of them, or an item of one): one pickle of them all, `dumps_batch`,
    would give the receiver one object there too, where each message must
    arrive as a copy of its own (within one message, what is shared stays
    shared).  Strings aside: whether equal strings are one object is the
    interpreter's choice (interning), on both sides."""
    seen: set[int] = set()
    for obj in objs:
        kind = type(obj)
        if kind is tuple and obj:
            mine = {id(obj)}
            for item in obj:
                if type(item) is bytes and len(item) > 1:
                    mine.add(id(item))
        elif kind is bytes and len(obj) > 1:
            mine = {id(obj)}
        else:
            continue
        if not seen.isdisjoint(mine):
            return True
        seen |= mine
    return False


def _collector(buffers: list[memoryview]) -> Callable[[pickle.PickleBuffer], bool]:
    def out_of_band(buffer: pickle.PickleBuffer) -> bool:
        try:
            raw = buffer.raw()
        except BufferError:         # non-contiguous: pickle copies it in-band
            return True
        if raw.nbytes < INBAND_LIMIT:
            return True
        buffers.append(raw)
        return False
    return out_of_band


def _dumps_with_dill(obj: Any, refusal: Exception, buffers: list[memoryview]) -> bytes:
    try:
        data = dill_dumps(obj)
    except RecursionError:
        raise ValueError(f"cannot serialize {_name(obj)}: it is nested too deeply") from None
    except Exception as dill_error:
        said = "" if str(dill_error) == str(refusal) else f"; pickle said: {refusal}"
        raise TypeError(f"cannot serialize {_name(obj)}: {dill_error} "
                        f"(neither pickle nor dill can carry it{said})") from None
    return pickle.dumps(_DillBox(data), 5, buffer_callback=_collector(buffers))


class _DillBox:
    """A dill pickle carried inside a plain one."""

    def __init__(self, data: bytes):
        self.data = data

    def __reduce__(self) -> tuple[Callable[[bytes], Any], tuple[bytes]]:
        return _undill, (self.data,)


def _undill(data: bytes) -> Any:
    import dill
    unpickler = dill.Unpickler(io.BytesIO(data))
    unpickler._main = sys.modules["__main__"]       # see dill_pickler
    return unpickler.load()


def _name(obj: Any) -> str:
    return f"a {type(obj).__qualname__!r} object"


class Serialized:
    """An object serialized ahead of time.  It pickles with its bulk buffers
    out-of-band, so that it can travel inside another message without its
    data being copied into that message's pickle."""

    def __init__(self, data: bytes, buffers: list[memoryview]):
        self.data = data
        self.buffers = buffers

    @classmethod
    def of(cls, obj: Any) -> "Serialized":
        return cls(*dumps(obj))

    def load(self) -> Any:
        return loads(self.data, self.buffers)

    def __reduce__(self) -> tuple[Callable[..., Serialized], tuple[Any, ...]]:
        return _rebuild_serialized, (self.data, *map(pickle.PickleBuffer, self.buffers))


def _rebuild_serialized(data: bytes, *buffers: Any) -> Serialized:
    return Serialized(data, [memoryview(buffer) for buffer in buffers])


_COUNT = struct.Struct("<q")


def to_frames(obj: Any) -> list[bytes | memoryview]:
    """`obj` as frames of one self-describing block, for a pipe or a single
    message: [n, pickle size, buffer sizes...] then the pickle, then the
    buffers, which are not copied."""
    data, buffers = dumps(obj)
    sizes = [len(data), *(buffer.nbytes for buffer in buffers)]
    return [struct.pack(f"<{len(sizes) + 1}q", len(buffers), *sizes), data, *buffers]


def from_block(block: bytes | bytearray | memoryview) -> Any:
    """Rebuild the object of a block made of `to_frames`."""
    view = memoryview(block)
    (nbuffers,) = _COUNT.unpack_from(view, 0)
    sizes = struct.unpack_from(f"<{nbuffers + 1}q", view, _COUNT.size)
    position = _COUNT.size * (nbuffers + 2)
    parts = []
    for size in sizes:
        parts.append(view[position:position + size])
        position += size
    return loads(parts[0], parts[1:])
