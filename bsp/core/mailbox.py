"""Framing of what one rank sends one destination in one superstep.

Traffic travels on numbered channels (the default message queue, each data
object, the collectives).  Per destination, each channel used in the
superstep has a `Section`: a byte stream (for example, pickles one after the
other), a message count, and bulk buffers (for example, numpy data) that
travel beside the stream, never inside it.

On the wire, everything a rank sends one destination is one contiguous
block, built from frames without joining them:

    header   int64 words: [n words], n sections, then per section
             channel, count, stream bytes, number of bulk buffers, their sizes
    streams  of every section, one after the other, padded to ALIGN bytes
    bulk     every bulk buffer, each padded to ALIGN bytes

The padding is there so that a receiver that gets the block at an
ALIGN-aligned address finds every bulk buffer aligned too, and can hand it
to numpy as it is.

The header and the streams go as one frame when they are small, so that a
small message costs one copy of one frame; bulk buffers are captured into
send buffers padded to ALIGN, so each is one frame, with its padding (an
uncopied buffer, sent from where it lies, is one frame and its padding another).  A transport may
deliver the block in pieces (see `bsp.core.transport`); each bulk buffer lies
within one piece.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, Final

from bsp.core.align import ALIGN, aligned, padding
from bsp.core.transport import Buffer
from bsp.core.wire import dumps_batch, dumps_floats, shares_objects

# Final: compiled, a C static (or a constant), not a lookup in the module per use.
_PADDING: Final = bytes(ALIGN)
JOIN_BYTES: Final = 1 << 18        # header and streams up to this size go as one frame
_WORD: Final = struct.Struct("<q")
# The header of the commonest block: one section, no bulk buffers (its
# words: 5, one section, channel, count, stream bytes, no buffers).
_ONE_SECTION: Final = struct.Struct("<6q")
_ONE_SECTION_SIZE: Final = 48
# ... and of one section with one bulk buffer (6, one section, channel,
# count, stream bytes, one buffer, its size): an array alone, say.
_ONE_BULK: Final = struct.Struct("<7q")
_ONE_BULK_SIZE: Final = 56
assert (_ONE_SECTION.size, _ONE_BULK.size) == (_ONE_SECTION_SIZE, _ONE_BULK_SIZE)


class Section:
    """What one channel sends one destination in the current superstep."""

    __slots__ = ("stream", "count", "bulk", "sizes", "deferred", "floats_only", "identified")

    def __init__(self) -> None:
        self.stream: bytes | bytearray = b""    # the first pickle as it is, not copied; a bytearray once there are more
        self.count = 0
        self.bulk: list[memoryview | bytes] = []                # the frames of the bulk buffers, each buffer padded to ALIGN
        self.sizes: list[int] = []          # the bytes of each buffer without its padding
        self.deferred: list[Any] = []       # immutable messages not pickled yet (see wire.deferrable)
        self.floats_only = True             # whether they are all floats (see flush)
        self.identified = False             # whether one of them is more than a float or an int (see flush)

    def defer(self, obj: Any) -> None:
        """Queue an immutable message, encoded at the sync with the others."""
        self.deferred.append(obj)
        self.count += 1
        if type(obj) is not float:
            self.floats_only = False
            if type(obj) is not int:
                self.identified = True

    def add_stream(self, data: bytes) -> None:
        """Queue one pickled message, after the messages queued before it."""
        if self.deferred:
            self.flush()
        self._append(data)
        self.count += 1

    def flush(self) -> None:
        """Encode the deferred messages, as one batch, onto the stream (one
        alone as its pickle; floats alone as their bytes)."""
        deferred = self.deferred
        if len(deferred) == 1:
            self._append(pickle.dumps(deferred[0], 5))
        elif self.floats_only:
            self._append(dumps_floats(deferred))
        elif self.identified and shares_objects(deferred):
            # one pickle would make the object they share one object at the
            # receiver too: each message is a copy of its own
            for obj in deferred:
                self._append(pickle.dumps(obj, 5))
        else:
            self._append(dumps_batch(deferred))
        self.deferred = []
        self.floats_only = True
        self.identified = False

    def _append(self, data: bytes) -> None:
        if not self.stream:
            self.stream = data          # the commonest stream, one pickle: no copy of it here
        elif type(self.stream) is bytes:
            self.stream = bytearray(self.stream) + data
        else:
            self.stream += data

    def add_bulk(self, padded: memoryview, nbytes: int) -> None:
        """A buffer captured into send space, with its padding."""
        self.bulk.append(padded)
        self.sizes.append(nbytes)

    def add_uncopied(self, buffer: memoryview) -> None:
        """A buffer that goes out from where it lies (an unbuffered send):
        it is one frame, and its padding another."""
        nbytes = buffer.nbytes
        self.bulk.append(buffer)
        if padding(nbytes):
            self.bulk.append(_PADDING[:padding(nbytes)])
        self.sizes.append(nbytes)


class Outbox:
    """Everything this rank sends one destination in the current superstep."""

    __slots__ = ("sections",)

    def __init__(self) -> None:
        self.sections: dict[int, Section] = {}

    def section(self, channel: int) -> Section:
        section = self.sections.get(channel)
        if section is None:
            section = self.sections[channel] = Section()
        return section

    def frames(self) -> list[Buffer]:
        """The frames of this destination's block, in wire order.  (Once:
        the outbox is spent.)"""
        if len(self.sections) == 1:
            for channel, section in self.sections.items():      # the one section (a loop: compiled, no iterator)
                found = _one_section(channel, section)
                if found is not None:
                    return found
        for section in self.sections.values():
            if section.deferred:
                section.flush()
        header = [len(self.sections)]
        for channel, section in self.sections.items():
            header += (channel, section.count, len(section.stream), len(section.sizes), *section.sizes)
        head = struct.pack(f"<{len(header) + 1}q", len(header), *header)
        front: list[Buffer] = [head, *(section.stream for section in self.sections.values())]
        used = sum(map(len, front))
        front.append(_PADDING[:padding(used)])
        if used <= JOIN_BYTES:
            front = [b"".join(front)]
        return front + [buffer for section in self.sections.values() for buffer in section.bulk]


def _one_section(channel: int, section: Section) -> list[Buffer] | None:
    """`Outbox.frames` of a block of one section, in its two commonest
    shapes (a stream alone; a stream and one bulk buffer, an array say),
    each with a header of fixed size; None for any other."""
    if section.deferred:
        section.flush()         # onto an empty stream (the commonest block): no copy
    stream = section.stream
    if len(stream) > JOIN_BYTES:
        return None
    if not section.sizes:       # the common small case: one copy of the stream
        used = _ONE_SECTION_SIZE + len(stream)
        return [b"".join((_ONE_SECTION.pack(5, 1, channel, section.count, len(stream), 0),
                          stream, _PADDING[:padding(used)]))]
    if len(section.bulk) == 1:
        used = _ONE_BULK_SIZE + len(stream)
        return [b"".join((_ONE_BULK.pack(6, 1, channel, section.count, len(stream), 1, section.sizes[0]),
                          stream, _PADDING[:padding(used)])), section.bulk[0]]
    return None


class Arrival:
    """What one source sent on one channel in the last superstep: its
    `count` of messages, their `stream` and their `bulk` buffers.  (A plain
    class, not a NamedTuple: mypyc's NamedTuples fail at import on a field
    of type memoryview.)"""

    __slots__ = ("source", "count", "stream", "bulk")

    def __init__(self, source: int, count: int, stream: memoryview, bulk: list[memoryview]):
        self.source = source
        self.count = count
        self.stream = stream
        self.bulk = bulk


def unpack(source: int, pieces: list[memoryview]) -> list[tuple[int, Arrival]]:
    """Split a block received from `source`, in pieces, into (channel,
    Arrival) pairs.  The views share the pieces' memory."""
    head = pieces[0]
    if len(pieces) <= 2 and len(head) >= _ONE_SECTION_SIZE:
        nwords, _, channel, count, nbytes, _ = _ONE_SECTION.unpack_from(head)
        if nwords == 5 and len(pieces) == 1:        # one section, no bulk buffers
            return [(channel, Arrival(source, count, head[_ONE_SECTION_SIZE:_ONE_SECTION_SIZE + nbytes], []))]
        if nwords == 6:                             # one section, one bulk buffer
            found = _one_bulk(source, pieces)
            if found is not None:
                return [found]
    reader = _Reader(pieces)
    (nwords,) = _WORD.unpack_from(head, 0)
    header = struct.unpack_from(f"<{nwords}q", head, _WORD.size)
    reader.skip(_WORD.size * (nwords + 1))
    layout = []
    i = 1
    for _ in range(header[0]):
        channel, count, stream_bytes, nbulk = header[i:i + 4]
        layout.append((channel, count, stream_bytes, header[i + 4:i + 4 + nbulk]))
        i += 4 + nbulk
    streams = [reader.take(stream_bytes) for _, _, stream_bytes, _ in layout]
    reader.skip(padding(reader.position))
    arrivals = []
    for (channel, count, _, sizes), stream in zip(layout, streams):
        bulk = []
        for size in sizes:
            bulk.append(reader.take(size))
            reader.skip(padding(size))
        arrivals.append((channel, Arrival(source, count, stream, bulk)))
    return arrivals


def _one_bulk(source: int, pieces: list[memoryview]) -> tuple[int, Arrival] | None:
    """`unpack` of a block of one section with one bulk buffer, in one
    piece or in two (the header and stream, then the buffer); None if the
    pieces are cut otherwise."""
    head = pieces[0]
    _, _, channel, count, nbytes, _, size = _ONE_BULK.unpack_from(head)
    start = aligned(_ONE_BULK_SIZE + nbytes)
    if len(pieces) == 1:
        bulk = head[start:start + size]
    elif len(head) == start:
        bulk = pieces[1][:size]
    else:
        return None
    if len(bulk) != size:
        raise ValueError("a block is shorter than its header says (a transport bug)")
    return channel, Arrival(source, count, head[_ONE_BULK_SIZE:_ONE_BULK_SIZE + nbytes], [bulk])


class _Reader:
    """Reads a block delivered in pieces, front to back."""

    def __init__(self, pieces: list[memoryview]):
        self._pieces = pieces
        self._index = 0
        self._offset = 0            # in the current piece
        self.position = 0           # in the block

    def take(self, size: int) -> memoryview:
        piece = self._pieces[self._index]
        while self._offset == len(piece) and size:
            self._index += 1
            self._offset = 0
            piece = self._pieces[self._index]
        view = piece[self._offset:self._offset + size]
        if len(view) != size:
            raise ValueError("a frame of the block spans two pieces (a transport bug)")
        self._offset += size
        self.position += size
        return view

    def skip(self, size: int) -> None:
        if size:
            self.take(size)
