"""The MPI transport: one exchange is one Alltoall of a small control row per
pair of ranks, then the payloads, point to point, with buffer (uppercase)
calls.

The control row that rank s sends rank d holds s's sync record, the bytes s
sends d and the number of pieces they come in, so an empty superstep is one
Alltoall and nothing else.  A pair's payload goes as it lies in memory:
frames of at least BIG_FRAME bytes (numpy data captured at send time) are
sent from where they are, without a copy; runs of smaller frames (headers,
pickle streams) are joined into one piece.  A block of several pieces is
preceded by a table of their sizes, so that the receiver can place each
piece in its buffer.  No message is larger than CHUNK_BYTES (default 1 GiB,
BSP_MPI_CHUNK_BYTES to lower it): MPI counts are 32-bit integers.
"""

from __future__ import annotations

import os
import struct
import sys
import time
from typing import Any, Callable, Sequence

import mpi4py

if "mpi4py.MPI" not in sys.modules:     # the thread level is fixed when MPI starts
    mpi4py.rc.thread_level = "funneled"

import numpy as np
from mpi4py import MPI as MPI     # re-exported: the rest of mpi_backend imports it from here

from bsp.buffers import BufferPool
from bsp.errors import SyncTimeoutError
from bsp.align import padding

from .abort import abort_job
from bsp.transport import RECORD_SIZE, Buffer, Transport, superstep_of

BIG_FRAME = 1 << 16
CHUNK_BYTES = int(os.environ.get("BSP_MPI_CHUNK_BYTES", 1 << 30))
_TAG_TABLE, _TAG_PIECE, _TAG_QUERY, _TAG_ANSWER = 1, 2, 3, 4
_ROW = struct.Struct(f"<{RECORD_SIZE}sqq")      # a control row: record, bytes, pieces
_NOTHING = bytes(16)                            # no bytes, no pieces


class MPITransport(Transport):
    """One rank's end of the MPI transport, on a communicator of its own."""

    def __init__(self, comm: MPI.Comm, sync_timeout: float | None = None):
        """Made collectively by every rank of `comm`.  `sync_timeout`: see
        `SyncWatch`."""
        self.comm = comm
        self.pid = comm.Get_rank()
        self.nprocs = comm.Get_size()
        self._rows = bytearray(self.nprocs * _ROW.size)         # the control rows, out
        self._received = bytearray(self.nprocs * _ROW.size)     # and in
        self._control = _ControlExchange(comm, self._rows, self._received)
        self._nothing: list[list[memoryview] | None] = [None] * self.nprocs
        self._pool = BufferPool()
        self._watch = SyncWatch(comm, sync_timeout) if sync_timeout else None

    def close(self) -> None:
        if self._watch is not None:
            self._watch.close()
        self._control.close()

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        return self._pool.take(nbytes)

    def exchange(self, outgoing: Sequence[Sequence[Buffer]], record: bytes
                 ) -> tuple[bytes, list[list[memoryview] | None]]:
        p = self.nprocs
        rows = self._rows
        if any(outgoing):
            plans = [_Plan(frames) for frames in outgoing]
            for dest, plan in enumerate(plans):
                _ROW.pack_into(rows, dest * _ROW.size, record, plan.nbytes, len(plan.pieces))
        else:
            plans = None
            rows[:] = (record + _NOTHING) * p
        if self._watch is None:
            self._control.run(MPI.Request.Wait)
        else:
            self._control.run(self._watch.wait, record)
        received = self._received
        if plans is None and received == rows:
            return record * p, self._nothing        # the same superstep everywhere, no data
        fields = [_ROW.unpack_from(received, i * _ROW.size) for i in range(p)]
        records = b"".join(row[0] for row in fields)
        sizes = [row[1] for row in fields]
        if plans is None and not any(sizes):
            return records, self._nothing
        plans = plans or [_Plan(())] * p
        return records, self._transfer(plans, sizes, [row[2] for row in fields])

    def _transfer(self, plans: list["_Plan"], sizes: list[int], counts: list[int]) -> list[list[memoryview] | None]:
        incoming: list[memoryview | None] = [None] * self.nprocs
        total = sum(size + padding(size) for size in sizes)
        buffer = self._pool.take(total) if total else memoryview(bytearray())
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
                mine = incoming[dest]
                assert mine is not None     # plan.nbytes of them are coming
                plan.copy_into(mine)
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
            assert block is not None        # it has a table
            for size in table.tolist():
                pending.append(self.comm.Irecv([block[offset:offset + size], MPI.BYTE], source, _TAG_PIECE))
                offset += size
        MPI.Request.Waitall(pending)
        return [None if block is None else [block] for block in incoming]


class _ControlExchange:
    """The Alltoall of the control rows, from `rows` into `received`.  A
    persistent collective (MPI 4) where the MPI library has them: set up
    once, it costs a third less per superstep than a fresh Ialltoall, which
    is the fallback."""

    def __init__(self, comm: MPI.Comm, rows: bytearray, received: bytearray):
        self._buffers = ([rows, MPI.BYTE], [received, MPI.BYTE])
        self._comm = comm
        self._pending = False
        try:
            self._persistent: MPI.Prequest | None = comm.Alltoall_init(*self._buffers)
        except (AttributeError, NotImplementedError, MPI.Exception):
            self._persistent = None

    def run(self, wait: Callable[..., Any], *args: Any) -> None:
        """Start the exchange and wait for it with `wait(request, *args)`.
        If that raises (a sync timeout), the exchange stays pending: the
        late ranks never come."""
        if self._persistent is None:
            request = self._comm.Ialltoall(*self._buffers)
        else:
            request = self._persistent
            request.Start()
        self._pending = True
        wait(request, *args)
        self._pending = False

    def close(self) -> None:
        # A pending request cannot be freed (MPICH crashes): it is left to
        # the end of the job, which a lost run brings soon.
        if self._persistent is not None and not self._pending:
            self._persistent.Free()


class SyncWatch:
    """The sync timeout under MPI, where no supervisor can see the ranks.

    A rank waits for the control exchange of a sync by polling it.  When it
    has waited `timeout` seconds, it asks every other rank, on a
    communicator of its own, which exchange it is at; ranks that are
    waiting too answer from their own polling, and those that do not answer
    within a grace period are the ranks that did not arrive.  Every waiting
    rank then raises SyncTimeoutError naming them; if rank 0 (which reports
    errors) is one of the late ranks, the first waiting rank reports instead
    and aborts the job.  A rank stuck in a loop can only be stopped by
    ending the job, which the launching rank does when it exits.
    """

    POLLS_PER_LOOK = 256            # polls of the exchange between looks at the clock
    POLLS_BEFORE_YIELD = 64         # polls that spin before each further poll yields the core
    GRACE_SECONDS = 2.0             # how long answers may take to come

    def __init__(self, comm: MPI.Comm, timeout: float):
        self._queries = comm.Dup()
        self._timeout = timeout
        self._pid = comm.Get_rank()
        self._nprocs = comm.Get_size()
        self._exchange = 0

    def close(self) -> None:
        self._queries.Free()

    def wait(self, request: MPI.Request, record: bytes) -> None:
        self._exchange += 1
        polls, started = 0, None
        while not request.Test():
            polls += 1
            if polls > self.POLLS_BEFORE_YIELD:
                # Let a rank that shares this core run: with more ranks than
                # cores, spinning on Test starves the ranks being waited for.
                os.sched_yield()
            if polls % self.POLLS_PER_LOOK:
                continue
            now = time.monotonic()
            started = started or now
            self._answer()
            if now - started > self._timeout and self._late_ranks_found(request, record):
                return

    def _answer(self) -> None:
        """Tell every rank that asked which exchange this rank waits at."""
        status = MPI.Status()
        asked = np.zeros(1, np.int64)
        while self._queries.Iprobe(MPI.ANY_SOURCE, _TAG_QUERY, status):
            self._queries.Recv([asked, MPI.INT64_T], status.Get_source(), _TAG_QUERY)
            self._queries.Send([np.array([self._exchange], np.int64), MPI.INT64_T], status.Get_source(), _TAG_ANSWER)

    def _late_ranks_found(self, request: MPI.Request, record: bytes) -> bool:
        """Ask the others; raise SyncTimeoutError naming the late ranks, or
        return False if the exchange completed meanwhile."""
        mine = np.array([self._exchange], np.int64)
        others = [rank for rank in range(self._nprocs) if rank != self._pid]
        for rank in others:
            self._queries.Send([mine, MPI.INT64_T], rank, _TAG_QUERY)
        answers: dict[int, int] = {}
        status, answer = MPI.Status(), np.zeros(1, np.int64)
        deadline = time.monotonic() + self.GRACE_SECONDS
        while len(answers) < len(others) and time.monotonic() < deadline:
            if request.Test():
                return False
            self._answer()
            while self._queries.Iprobe(MPI.ANY_SOURCE, _TAG_ANSWER, status):
                self._queries.Recv([answer, MPI.INT64_T], status.Get_source(), _TAG_ANSWER)
                answers[status.Get_source()] = int(answer[0])
        waiting = sorted([self._pid] + [rank for rank, exchange in answers.items() if exchange == self._exchange])
        late = [rank for rank in range(self._nprocs) if rank not in waiting]
        error = SyncTimeoutError(self._timeout, late, waiting, superstep_of(record))
        if 0 in late and self._pid == waiting[0]:
            print(f"pybsp: SyncTimeoutError: {error}", file=sys.stderr, flush=True)
            abort_job(1)
        raise error


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
