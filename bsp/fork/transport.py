"""The fork transport: ranks exchange bytes through shared memory.

A sender writes each frame into its current send arena (frames that came
from `send_buffer` are there already and are not copied again), then writes
an extent table: for each destination, the (offset, length) pieces of its
block.  After the barrier each receiver copies its pieces out of every
sender's arena into one buffer of its own.  Every byte is copied twice, once
by the sender and once by the receiver, and a superstep that sends M bytes per
rank needs at most 2M more memory per rank.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from ..mailbox import aligned_buffer, padding
from ..record import RECORD_SIZE
from ..transport import Buffer, Transport
from .barrier import Barrier
from .shared import SharedRegion


class ForkTransport(Transport):
    def __init__(self, pid: int, shared: SharedRegion, barrier: Barrier):
        self.pid = pid
        self.nprocs = shared.nprocs
        self._shared = shared
        self._fields = shared.fields()
        self._barrier = barrier
        barrier.attach(self._fields.barrier_count)
        self._records = [shared.records(half) for half in (0, 1)]
        self._arenas = [[shared.arena(rank, half) for half in (0, 1)] for rank in range(self.nprocs)]
        self._capacity = shared.arena_bytes
        self._half = 0
        self._used = 0
        # send_buffer views of this superstep, by id, with their offsets; the
        # views are kept here so that their ids cannot be reused meanwhile.
        self._placed: dict[int, tuple[int, memoryview]] = {}
        self._exchanges = 0

    def send_buffer(self, nbytes: int) -> memoryview:
        offset = self._allocate(nbytes)
        view = self._arenas[self.pid][self._half][offset:offset + nbytes]
        self._placed[id(view)] = (offset, view)
        return view

    def _allocate(self, nbytes: int) -> int:
        offset = self._used
        end = offset + nbytes
        if end > self._capacity:
            raise MemoryError(
                f"this superstep sends more than the fork backend can hold: {end} bytes "
                f"from rank {self.pid}, over its send arena of {self._capacity} bytes")
        self._used = end + padding(end)
        return offset

    def exchange(self, outgoing: Sequence[Sequence[Buffer]], record: bytes) -> tuple[bytes, list[memoryview | None]]:
        fields, pid = self._fields, self.pid
        table, totals = self._write_blocks(outgoing)
        table_offset = self._allocate(table.nbytes)
        self._arenas[pid][self._half][table_offset:table_offset + table.nbytes] = table.view(np.uint8)
        half = self._half
        fields.tables[half, pid] = (table_offset, table.size)
        fields.sizes[half, pid] = totals
        self._records[half][pid * RECORD_SIZE:(pid + 1) * RECORD_SIZE] = record

        self._exchanges += 1
        fields.arrived[pid] = self._exchanges
        self._barrier.wait(pid)
        fields.departed[pid] = self._exchanges

        records = bytes(self._records[half])
        incoming = self._read_blocks(fields.sizes[half, :, pid].tolist())
        # The other arena was last read at the previous exchange, which every
        # rank has finished: it is free for the next superstep.
        self._half ^= 1
        self._used = 0
        self._placed.clear()
        return records, incoming

    def _write_blocks(self, outgoing: Sequence[Sequence[Buffer]]) -> tuple[np.ndarray, list[int]]:
        """Place every frame in the arena; return the extent table
        [start index of each destination's extents (p+1), then (offset,
        length) pairs] and the bytes for each destination."""
        arena = self._arenas[self.pid][self._half]
        starts = [0]
        extents: list[int] = []
        totals = []
        for frames in outgoing:
            total = 0
            for frame in frames:
                size = len(frame)
                if not size:
                    continue
                placed = self._placed.get(id(frame))
                if placed is not None:
                    offset = placed[0]
                else:
                    offset = self._allocate(size)
                    arena[offset:offset + size] = frame
                if extents and len(extents) > 2 * starts[-1] and extents[-2] + extents[-1] == offset:
                    extents[-1] += size       # continues the previous piece
                else:
                    extents += (offset, size)
                total += size
            starts.append(len(extents) // 2)
            totals.append(total)
        return np.array(starts + extents, np.int64), totals

    def _read_blocks(self, sizes: list[int]) -> list[memoryview | None]:
        """Copy what each source wrote for this rank into one private buffer."""
        incoming: list[memoryview | None] = [None] * self.nprocs
        total = sum(size + padding(size) for size in sizes)
        if not total:
            return incoming
        buffer = aligned_buffer(total)
        position = 0
        for source, size in enumerate(sizes):
            if not size:
                continue
            arena = self._arenas[source][self._half]
            offset, length = self._fields.tables[self._half, source]
            table = np.frombuffer(arena, np.int64, count=int(length), offset=int(offset))
            first, last = table[self.pid], table[self.pid + 1]
            pieces = table[self.nprocs + 1 + 2 * first:self.nprocs + 1 + 2 * last].tolist()
            start = position
            for i in range(0, len(pieces), 2):
                piece_offset, piece_size = pieces[i], pieces[i + 1]
                buffer[position:position + piece_size] = arena[piece_offset:piece_offset + piece_size]
                position += piece_size
            incoming[source] = buffer[start:position]
            position += padding(position)
        return incoming
