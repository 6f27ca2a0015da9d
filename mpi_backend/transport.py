"""The MPI transport: one exchange is one Alltoall of a small control row per
pair of ranks, then the payloads, point to point, with buffer (uppercase)
calls.

The control row that rank s sends rank d holds the bytes s sends d, the
number of pieces they come in, and s's sync record, so an empty superstep is
one Alltoall and nothing else.  A pair's payload goes as it lies in memory:
frames of at least BIG_FRAME bytes (numpy data captured at send time) are
sent from where they are, without a copy; runs of smaller frames (headers,
pickle streams) are joined into one piece.  A block of several pieces is
preceded by a table of their sizes, so that the receiver can place each
piece in its buffer.  No message is larger than CHUNK_BYTES (default 1 GiB,
BSP_MPI_CHUNK_BYTES to lower it): MPI counts are 32-bit integers.
"""

from __future__ import annotations

import os
import sys
from typing import Sequence

import mpi4py

if "mpi4py.MPI" not in sys.modules:     # the thread level is fixed when MPI starts
    mpi4py.rc.thread_level = "funneled"

import numpy as np
from mpi4py import MPI

from bsp.mailbox import aligned_buffer, padding
from bsp.record import RECORD_SIZE
from bsp.transport import Buffer, Transport

BIG_FRAME = 1 << 16
CHUNK_BYTES = int(os.environ.get("BSP_MPI_CHUNK_BYTES", 1 << 30))
_TAG_TABLE, _TAG_PIECE = 1, 2
_RECORD_WORDS = RECORD_SIZE // 8
_BYTES, _PIECES = 0, 1        # the columns of a control row before the record


class MPITransport(Transport):
    """One rank's end of the MPI transport, on a communicator of its own."""

    def __init__(self, comm: MPI.Comm):
        self.comm = comm
        self.pid = comm.Get_rank()
        self.nprocs = comm.Get_size()
        self._send_control = np.zeros((self.nprocs, 2 + _RECORD_WORDS), np.int64)
        self._receive_control = np.zeros_like(self._send_control)

    def send_buffer(self, nbytes: int) -> memoryview:
        return aligned_buffer(nbytes)

    def exchange(self, outgoing: Sequence[Sequence[Buffer]], record: bytes) -> tuple[bytes, list[memoryview | None]]:
        plans = [_Plan(frames) for frames in outgoing]
        control = self._send_control
        control[:, _BYTES] = [plan.nbytes for plan in plans]
        control[:, _PIECES] = [len(plan.pieces) for plan in plans]
        control[:, 2:] = np.frombuffer(record, np.int64)
        self.comm.Alltoall(control, self._receive_control)
        received = self._receive_control
        records = received[:, 2:].tobytes()
        sizes = received[:, _BYTES].tolist()
        if not any(sizes) and not any(plan.nbytes for plan in plans):
            return records, [None] * self.nprocs
        return records, self._transfer(plans, sizes, received[:, _PIECES].tolist())

    def _transfer(self, plans: list["_Plan"], sizes: list[int], counts: list[int]) -> list[memoryview | None]:
        incoming: list[memoryview | None] = [None] * self.nprocs
        total = sum(size + padding(size) for size in sizes)
        buffer = aligned_buffer(total) if total else None
        position = 0
        for source, size in enumerate(sizes):
            if size:
                incoming[source] = buffer[position:position + size]
                position += size + padding(size)

        tables: dict[int, np.ndarray] = {}
        receives = []
        for source, block in enumerate(incoming):
            if block is None or source == self.pid:
                continue
            if counts[source] == 1:
                receives.append(self.comm.Irecv([block, MPI.BYTE], source, _TAG_PIECE))
            else:
                tables[source] = np.empty(counts[source], np.int64)
                receives.append(self.comm.Irecv([tables[source], MPI.INT64_T], source, _TAG_TABLE))
        pending = []
        for dest, plan in enumerate(plans):
            if not plan.nbytes:
                continue
            if dest == self.pid:
                plan.copy_into(incoming[dest])
                continue
            if len(plan.pieces) > 1:
                pending.append(self.comm.Isend([plan.table, MPI.INT64_T], dest, _TAG_TABLE))
            pending += [self.comm.Isend([piece, MPI.BYTE], dest, _TAG_PIECE) for piece in plan.pieces]
        MPI.Request.Waitall(receives)

        # Blocks of several pieces: now that their tables are here, receive
        # the pieces, each where it belongs.  (Large sends complete only once
        # these are posted, so they are waited for last.)
        for source, table in tables.items():
            block, offset = incoming[source], 0
            for size in table.tolist():
                pending.append(self.comm.Irecv([block[offset:offset + size], MPI.BYTE], source, _TAG_PIECE))
                offset += size
        MPI.Request.Waitall(pending)
        return incoming


class _Plan:
    """How one destination's frames go out: as pieces of at most CHUNK_BYTES,
    each either a frame of its own or a run of small frames joined."""

    def __init__(self, frames: Sequence[Buffer]):
        self.pieces: list[memoryview] = []
        run: list[Buffer] = []
        run_bytes = 0
        for frame in frames:
            size = len(frame)
            if size >= BIG_FRAME:
                self._end_run(run)
                run, run_bytes = [], 0
                view = memoryview(frame)
                self.pieces += [view[start:start + CHUNK_BYTES] for start in range(0, size, CHUNK_BYTES)]
            elif size:
                if run_bytes + size > CHUNK_BYTES:
                    self._end_run(run)
                    run, run_bytes = [], 0
                run.append(frame)
                run_bytes += size
        self._end_run(run)
        self.nbytes = sum(piece.nbytes for piece in self.pieces)
        self.table = np.array([piece.nbytes for piece in self.pieces], np.int64)

    def _end_run(self, run: list[Buffer]) -> None:
        if run:
            self.pieces.append(memoryview(b"".join(run)))

    def copy_into(self, block: memoryview) -> None:
        offset = 0
        for piece in self.pieces:
            block[offset:offset + piece.nbytes] = piece
            offset += piece.nbytes
