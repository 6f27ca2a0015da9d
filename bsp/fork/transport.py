"""The fork transport: ranks exchange bytes through shared memory.

A frame goes out in one of two ways:

- handed over: a large frame captured into an exclusive send buffer (a region
  of the sender's handover heap, see `heap`) becomes the receiver's memory as
  it is.  Its data is copied once, when it was captured at `send`;
- written at the exchange: a large frame of the caller's own memory (a
  memoryview that is not a send buffer: the data of an unbuffered send) is
  written into a heap region at the exchange, which is then handed over;
- copied: every other frame is written into the sender's scratch arena of the
  exchange (unless it is there already) and copied out by the receiver after
  the barrier, into a pooled buffer of its own.

A sender announces how many bytes it has for each rank, and where they are:
a block that is one run of bytes by its offset (one small frame, the common
small superstep; or a header written into the room left before a send
buffer, one array sent: in the scratch arena, or a handover region), any
other in an extent table, (offset, length, kind) per piece in block order;
then every rank waits at the barrier; then each receiver copies the small
blocks it was sent, takes the handed-over runs as they are, and reads the
tables of the ranks that sent it others.
"""

from __future__ import annotations

import array
from typing import Final, Sequence

import numpy as np

from bsp.core.align import ALIGN, aligned
from bsp.core.buffers import (COPIED, HANDED_OVER, BufferPool, ReceiveSpace, copy_into, lay_out, on_release,
                              room_for)
from bsp.core.sync_record import agree, flags_of, with_flags
from bsp.core.transport import RECORD_SIZE, Buffer, Incoming, Outgoing, Transport
from bsp.fork.heap import HandoverHeap, mark_free
from bsp.fork.barrier import Barrier
from bsp.fork.shared import SharedRegion

HANDOVER_MIN: Final = 1 << 16      # smaller frames are cheaper to copy than to hand over
# Room left free before each send buffer and each handover region's data,
# where the header and stream of a block made of them and that buffer alone
# (one array sent, the commonest bulk message) are written at the exchange:
# the block is then one run of bytes, announced by its offset like a small
# one, with no extent table (a handover region's as -2 - (offset + the
# head's length in units of ALIGN: offsets are multiples of ALIGN)).
HEAD_ROOM: Final = 256


class ForkTransport(Transport):
    def __init__(self, pid: int, region: SharedRegion, barrier: Barrier):
        self.pid = pid
        self.nprocs = region.nprocs
        self._region = region
        self._barrier = barrier
        self._words = region.words()
        self._bytes = region.bytes()
        self._mapping = np.frombuffer(region.map, np.uint8)
        self._scratch = [region.scratch(pid, half) for half in (0, 1)]
        self._capacity = region.area_bytes
        self._heap = HandoverHeap(self._words, region.heap(pid), region.area_bytes)
        self._pool = BufferPool()
        self._half = 0
        self._used = 0                      # bytes used in the scratch arena of this exchange
        # send_buffer views of this superstep by id, with offset and kind;
        # the views are kept so that their ids cannot be reused meanwhile.
        self._placed: dict[int, tuple[int, int, memoryview]] = {}
        self._headed: set[int] = set()      # send buffers whose head room holds a block's head
        self._exchanges = 0
        # Where this rank's control fields are, per half of the exchanges.
        p = self.nprocs
        spans = [region.records(half) for half in (0, 1)]
        self._all_records = [slice(start, end) for start, end in spans]
        self._my_record = [slice(start + pid * RECORD_SIZE, start + (pid + 1) * RECORD_SIZE) for start, _ in spans]
        # The bytes each source sends this rank (read whole only where every
        # rank has a core, so p is small; see `_serialized`).
        self._sizes_for_me = [slice(region.sizes(half, pid), region.sizes(half, pid) + p) for half in (0, 1)]
        self._direct_for_me = [region.direct(half, pid) for half in (0, 1)]
        # the word where this rank tells destination d its bytes is
        # _size_slot[half] + d * p; where they lie, _direct_slot[half] + d * p
        self._size_slot = [region.sizes(half, 0) + pid for half in (0, 1)]
        self._direct_slot = [region.direct(half, 0) + pid for half in (0, 1)]
        self._told: list[list[int]] = [[], []]     # per half: the destinations told a size, to zero next time
        # Ranks that share cores arrive at the barrier one at a time: then
        # each one, as it arrives, compares its record with the first one's
        # and puts its pid in the inbox of each rank it sends to, so that no
        # rank reads p records or p sizes (`_arrive`): O(k) per superstep.
        self._serialized = barrier.serializes_arrivals
        self._agreement = [region.agreement(half) for half in (0, 1)]
        self._inbox = [region.inbox(half, 0) for half in (0, 1)]      # + dest * (p + 1)
        self._space = ReceiveSpace(self._pool)
        self._arrived = region.ARRIVED + pid
        self._departed = region.DEPARTED + pid

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        if exclusive and nbytes >= HANDOVER_MIN:
            offset, kind = self._heap_region(nbytes), HANDED_OVER
        else:
            offset, kind = self._allocate(HEAD_ROOM + nbytes) + HEAD_ROOM, COPIED
        view = self._bytes[offset:offset + nbytes]
        self._placed[id(view)] = (offset, kind, view)
        return view

    def _heap_region(self, nbytes: int) -> int:
        """A region of the handover heap for `nbytes`, with HEAD_ROOM before
        them; returns where they start (see `_region_of`)."""
        return self._heap.allocate(HEAD_ROOM + nbytes) + HEAD_ROOM

    @staticmethod
    def _region_of(data: int) -> int:
        """The heap's offset of the region whose data starts at `data`."""
        return data - HEAD_ROOM

    def _allocate(self, nbytes: int) -> int:
        start = self._used
        end = start + nbytes
        if end > self._capacity:
            raise MemoryError(
                f"this superstep sends more than the fork backend can hold: {end} bytes "
                f"from rank {self.pid}, over its scratch arena of {self._capacity} bytes")
        self._used = aligned(end)
        return self._scratch[self._half] + start

    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        words, pid, half = self._words, self.pid, self._half
        if self._told[half]:
            self._untell(half)
        handed_over = self._write_table(outgoing) if outgoing else set()
        self._bytes[self._my_record[half]] = record
        self._exchanges += 1
        words[self._arrived] = self._exchanges
        if self._serialized:
            self._barrier.wait(pid, lambda first: self._arrive(first, half, record))
            words[self._departed] = self._exchanges
            records, senders = self._agreed(half, record), self._senders(half)
        else:
            self._barrier.wait(pid)
            words[self._departed] = self._exchanges
            records = bytes(self._bytes[self._all_records[half]])
            sizes = words[self._sizes_for_me[half]].tolist()
            senders = [source for source, size in enumerate(sizes) if size] if any(sizes) else []
        incoming = self._read(senders) if senders else {}
        if self._placed:
            self._drop_placed(handed_over)
        # The other arena was last read at the previous exchange, which every
        # rank has finished: it is free for the next superstep.
        self._half = half ^ 1
        self._used = 0
        return records, incoming

    def _arrive(self, first: bool, half: int, record: bytes) -> None:
        """Under the barrier's lock, as this rank arrives: fold its record
        into the agreement (the first one's record, whether any other
        differed from it but for the flags and the leader, the flags or-ed)
        and list this rank in the inbox of each rank it sent to."""
        words, at, p = self._words, self._agreement[half], self.nprocs
        flags = flags_of(record)
        if first:
            self._bytes[8 * at:8 * at + RECORD_SIZE] = record
            words[at + 5], words[at + 6] = 0, flags
        else:
            if not agree(self._bytes[8 * at:8 * at + RECORD_SIZE], record):
                words[at + 5] = 1
            words[at + 6] |= flags
        inboxes, pid = self._inbox[half], self.pid
        for dest in self._told[half]:
            inbox = inboxes + dest * (p + 1)
            count = words[inbox]
            words[inbox + 1 + count] = pid
            words[inbox] = count + 1

    def _agreed(self, half: int, record: bytes) -> bytes:
        """After the barrier: the one record every rank's agrees with (the
        flags or-ed), or, when some differ, the records of all ranks."""
        words, at = self._words, self._agreement[half]
        if words[at + 5]:
            return bytes(self._bytes[self._all_records[half]])
        flags = words[at + 6]
        return record if flags == flags_of(record) else with_flags(record, flags)

    def _senders(self, half: int) -> list[int]:
        """After the barrier: the ranks that listed themselves in this rank's
        inbox, in pid order; the inbox is emptied for the next exchange of
        this half (which no rank can reach before this one arrives at the
        next barrier)."""
        words, inbox = self._words, self._inbox[half] + self.pid * (self.nprocs + 1)
        count = words[inbox]
        if not count:
            return []
        words[inbox] = 0
        return sorted(words[inbox + 1:inbox + 1 + count].tolist())

    def _untell(self, half: int) -> None:
        """Zero the sizes this rank told for the last exchange of `half`."""
        words, slot, p = self._words, self._size_slot[half], self.nprocs
        for dest in self._told[half]:
            words[slot + dest * p] = 0
        self._told[half] = []

    def _write_table(self, outgoing: Outgoing) -> set[int]:
        """Place every frame; publish the bytes for each destination, and
        where to find them: a block that is one small frame (the common
        case) directly, by its offset; the others in the extent table
        [n, the n destinations, the index of each one's first extent and
        one past the last (n + 1 words), then (offset, length, kind)
        triples].  Returns the heap regions handed over."""
        words, placed, p, half = self._words, self._placed, self.nprocs, self._half
        extents, handed_over = list[int](), set[int]()
        tabled, starts = list[int](), list[int]()      # the destinations in the table, their first extents
        told, size_slot, direct_slot = self._told[half], self._size_slot[half], self._direct_slot[half]
        for dest, frames in outgoing.items():
            if not frames:
                continue
            if len(frames) == 1 and len(frames[0]) < HANDOVER_MIN and id(frames[0]) not in placed:
                frame = frames[0]
                total = len(frame)
                direct = self._allocate(total)
                self._bytes[direct:direct + total] = frame
            elif len(frames) == 2 and (direct := self._in_head_room(frames, handed_over)) != -1:
                total = len(frames[0]) + len(frames[1])
            else:
                direct = -1                 # in the extent table
                first = len(extents) // 3
                total = self._place(frames, extents, handed_over)
                if total:
                    tabled.append(dest)
                    starts.append(first)
            if total:
                told.append(dest)
                words[size_slot + dest * p] = total
                words[direct_slot + dest * p] = direct
        if extents:
            table = array.array("q", [len(tabled), *tabled, *starts, len(extents) // 3, *extents])
            offset = self._allocate(8 * len(table))
            words[offset // 8:offset // 8 + len(table)] = table
            where = self._region.table(half, self.pid)
            words[where], words[where + 1] = offset // 8, len(table)
        return handed_over

    def _in_head_room(self, frames: Sequence[Buffer], handed_over: set[int]) -> int:
        """For a block of two frames, a small one and then a send buffer:
        write the first into the head room of the second, and return where
        the block starts (a handover region's encoded as HEAD_ROOM's comment
        says); else -1."""
        head, placed = frames[0], self._placed.get(id(frames[1]))
        if placed is None or len(head) > HEAD_ROOM or id(head) in self._placed:
            return -1
        end, kind = placed[0], placed[1]
        if end in self._headed:         # a buffer sent to several ranks: its room is taken
            return -1
        self._headed.add(end)
        self._bytes[end - len(head):end] = head
        if kind == HANDED_OVER:
            handed_over.add(end)
            return -2 - (end - len(head) + len(head) // ALIGN)
        return end - len(head)

    def _place(self, frames: Sequence[Buffer], extents: list[int], handed_over: set[int]) -> int:
        """Place one destination's frames, adding their extents; returns its bytes."""
        total = 0
        first = len(extents)
        for frame in frames:
            size = len(frame)
            if not size:
                continue
            placed = self._placed.get(id(frame))
            if placed is not None:
                offset, kind = placed[0], placed[1]
                if kind == HANDED_OVER:
                    handed_over.add(offset)
            elif size >= HANDOVER_MIN:
                # the caller's own memory (an unbuffered send): this
                # write into the heap is its transfer
                offset, kind = self._heap_region(size), HANDED_OVER
                copy_into(self._bytes[offset:offset + size], memoryview(frame))
                handed_over.add(offset)
            else:
                offset, kind = self._allocate(size), COPIED
                self._bytes[offset:offset + size] = frame
            if (kind == COPIED and len(extents) > first and extents[-1] == COPIED
                    and extents[-3] + extents[-2] == offset):
                extents[-2] += size         # continues the previous piece
            else:
                extents += (offset, size, kind)
            total += size
        return total

    def _read(self, senders: list[int]) -> Incoming:
        """The pieces each of `senders` sent this rank: a block that is one
        run of bytes, and the copied runs of the others, in receive space
        of ours; handed-over regions as they are."""
        words, half, pid = self._words, self._half, self.pid
        sizes = self._sizes_for_me[half].start
        direct_for_me = self._direct_for_me[half]
        incoming: Incoming = {}
        extents: dict[int, list[int]] = {}
        copy_bytes = 0
        for source in senders:
            size = words[sizes + source]
            offset = words[direct_for_me + source]
            if offset >= 0:
                space = self._space.take(size)
                space[:] = self._bytes[offset:offset + size]
                incoming[source] = [space]
                continue
            if offset < -1:             # a handover region with its head: the block as it lies
                start, head = divmod(-2 - offset, ALIGN)
                incoming[source] = [self._receive_handover(start * ALIGN, size, start * ALIGN + head * ALIGN)]
                continue
            where = self._region.table(half, source)
            table = words[words[where]:words[where] + words[where + 1]]
            count = table[0]
            index = table[1:1 + count].tolist().index(pid)
            first = 2 + 2 * count           # where the triples start
            found = table[first + 3 * table[1 + count + index]:first + 3 * table[2 + count + index]].tolist()
            extents[source] = found
            copy_bytes += room_for(found)
        if not extents:
            return incoming
        buffer = self._space.take(copy_bytes)
        position = 0
        for source, found in extents.items():
            incoming[source], position = lay_out(found, buffer, position, self._fill, self._receive_handover)
        return incoming

    def _fill(self, view: memoryview, offset: int) -> None:
        """Copy the piece at `offset` of the shared region into `view`."""
        view[:] = self._bytes[offset:offset + len(view)]

    def _receive_handover(self, offset: int, length: int, data: int | None = None) -> memoryview:
        """A region of another rank's heap, as memory of ours: it goes back
        to its owner when the last object built on it is gone.  `data`:
        where the buffer starts, when the block's head lies before it."""
        region = self._mapping[offset:offset + length]
        data = offset if data is None else data
        on_release(region, mark_free, self._words, self._region_of(data))
        return region.data

    def _drop_placed(self, handed_over: set[int]) -> None:
        for offset, kind, _ in self._placed.values():
            if kind == HANDED_OVER and offset not in handed_over:
                self._heap.free(self._region_of(offset))     # captured, but its message was dropped
        self._placed.clear()
        self._headed.clear()
