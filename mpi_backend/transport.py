"""The MPI transport: a sparse exchange whose control traffic per rank
grows as O(log p) plus O(1) per destination (docs/performance.md).

A sync is Hoefler's nonblocking consensus (NBX), with the sync record riding
on its barrier:

1. each rank sends each destination it has data for one synchronous-mode
   message (Issend), the block itself, or the table of its pieces when it
   comes in several (then the pieces follow on a communicator of their own);
2. meanwhile, it receives whatever blocks and tables arrive (Improbe);
3. once all its sends are matched (the Issends complete), it starts the
   allreduce of its sync record (`agreement`), and keeps receiving;
4. when the allreduce completes, every rank has started it, so every send
   was matched, so everything sent to this rank has arrived.

So a superstep in which a rank talks to k others costs it k messages, their
acknowledgements and ceil(log2 p) rounds of an 80-byte allreduce: no
Alltoall of counts, no O(p) anything (what is sent and what arrived are
keyed by rank, only the k ranks talked to; see bsp.core.transport).  An
empty superstep is the allreduce alone.  Tags alternate between successive
exchanges: a rank that has finished exchange n may send exchange n+1's
blocks to a rank still probing in n, which keeps them for n+1.

At small p (BSP_MPI_DENSE_RANKS, default 8, or fewer ranks) a sync is
one collective instead (`_Slots`): an Ialltoall of one fixed-size slot per
pair, each slot the sender's record, a small header and the block itself
when it fits.  Every rank then knows every rank's record, and whether any
rank has a block that did not fit (a large array, many messages): only then
does an NBX exchange of those blocks follow, as above.  The slot size is the
same on every rank: it follows the largest block that fitted, as every rank
sees it in the headers (see docs/performance.md for the switch point).

A pair's payload goes as it lies in memory: frames of at least BIG_FRAME
bytes (numpy data captured at send time) are sent from where they are,
without a copy; runs of smaller frames (headers, pickle streams) are joined
into one piece.  No message is larger than CHUNK_BYTES (default 1 GiB,
BSP_MPI_CHUNK_BYTES to lower it): MPI counts are 32-bit integers.
"""

from __future__ import annotations

import os
import struct
import sys
from typing import Any, Callable, Final, Sequence

import mpi4py

if "mpi4py.MPI" not in sys.modules:     # the thread level is fixed when MPI starts
    mpi4py.rc.thread_level = "funneled"

import numpy as np
from mpi4py import MPI as MPI     # re-exported: the rest of mpi_backend imports it from here

from bsp.core.buffers import COPIED, HANDED_OVER, BufferPool, ReceiveSpace
from bsp.launch.cores import usable_cores
from bsp.errors import SyncTimeoutError

from mpi_backend.abort import abort_job
from mpi_backend.agreement import Agreement
from mpi_backend.clock import RunningClock
from mpi_backend.shared_window import HANDOVER_MIN, NodeWindow
from bsp.core.transport import RECORD_SIZE, Buffer, Incoming, Outgoing, Transport, superstep_of

BIG_FRAME = 1 << 16
CHUNK_BYTES = int(os.environ.get("BSP_MPI_CHUNK_BYTES", 1 << 30))
# Tags of a block's first message, by exchange parity: the block, or its table.
_TAG_BLOCK, _TAG_TABLE = (0, 1), (2, 3)
_TAG_SHARED = (6, 7)                # a table of pieces, some of them handed over (see shared_window)
_TAG_QUERY, _TAG_ANSWER = 4, 5
_SPIN_POLLS: Final = 64                    # polls that spin before each further one yields the core (oversubscribed)
# The dense protocol (`_Slots`): used at this many ranks or fewer (0: never).
DENSE_RANKS = int(os.environ.get("BSP_MPI_DENSE_RANKS", 8))


class MPITransport(Transport):
    """One rank's end of the MPI transport, on a communicator of its own."""

    def __init__(self, comm: MPI.Comm, sync_timeout: float | None = None):
        """Made collectively by every rank of `comm`.  `sync_timeout`: see
        `SyncWatch`."""
        self.comm = comm
        self.pid = comm.Get_rank()
        self.nprocs = comm.Get_size()
        self._pieces = comm.Dup()           # the pieces of blocks sent in several
        self._agreement = Agreement(comm)
        self._pool = BufferPool()
        self._space = ReceiveSpace(self._pool)
        self._status = MPI.Status()
        self._parity = 0
        self._early: list[tuple[int, int, int, Any]] = []    # (source, tag, count, message) of the next exchange
        self.yields = _oversubscribed(comm)
        self._watch = SyncWatch(comm, sync_timeout, self.yields) if sync_timeout else None
        self._window = NodeWindow(comm, self._space)
        self._lost = False                  # a sync timed out: the late ranks will not come
        self._slots = _Slots(comm, self._space, self._window) if 1 < self.nprocs <= DENSE_RANKS else None
        # With slots, a buffer too large for one is handed over in a slot's
        # table at no cost in messages: from SLOT_MAX bytes on, not HANDOVER_MIN.
        self._handed_from = SLOT_MAX if self._slots is not None else HANDOVER_MIN

    def abandon(self) -> None:
        """The job is ending while the ranks are out of step: `close` does
        nothing collective."""
        self._lost = True

    def close(self) -> None:
        if self._slots is not None and not self._lost:
            self._slots.close()
        self._window.close(self._lost)
        if self._watch is not None:
            self._watch.close()
        self._agreement.close()
        self._pieces.Free()

    def array_bulk_from(self) -> int | None:
        """With slots, from the largest slot on: such an array, captured in
        the shared window, goes in the slot's table of pieces, in the one
        collective round, where in the stream it would take an NBX round."""
        return SLOT_MAX if self._slots is not None else None

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        shared = self._window.send_buffer(nbytes, self._handed_from) if exclusive else None
        return self._pool.take(nbytes) if shared is None else shared

    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        parity, self._parity = self._parity, self._parity ^ 1
        if self._watch is not None:
            self._watch.exchanges += 1
        if self._slots is None:
            records, incoming = self._sparse(parity, outgoing, record)
        else:
            records, incoming = self._dense(parity, outgoing, record)
        if self._window.placed:
            self._window.settle()   # the sends are complete: regions captured but not handed over come back
        return records, incoming

    def _dense(self, parity: int, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        """One exchange of slots, and NBX for the blocks that did not fit."""
        assert self._slots is not None
        rest = self._slots.start(outgoing, record)
        if not self._slots.done():
            self._wait(self._slots.done, record)
        records, incoming = self._slots.finish(record)
        if self._slots.more:        # some rank has blocks that did not fit: they go by NBX
            _, late = self._sparse(parity, rest, record)
            incoming.update(late)       # no source is in both
        return records, incoming

    def _sparse(self, parity: int, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        """One NBX exchange (see the module's docstring)."""
        round_ = _Round(self, parity, record)
        if outgoing:
            round_.send(outgoing)
        if self._early:
            for early in self._early:
                round_.receive(*early)
            self._early = []
        if self.nprocs == 1:
            return record, round_.finish()
        if not round_.sends:            # nothing to wait for before agreeing
            round_.agreement = self._agreement.start(record)
            if round_.agreement.Test():
                return self._agreement.records(record, self.nprocs), round_.finish()
        self._wait(round_.step, record)
        incoming = round_.finish()
        return self._agreement.records(record, self.nprocs), incoming

    def _wait(self, test: Callable[[], bool], record: bytes) -> None:
        """Call `test` until it says the exchange is complete: spinning,
        yielding the core when oversubscribed, under the sync timeout."""
        if self._watch is not None:
            try:
                self._watch.wait(test, record)
            except SyncTimeoutError:
                self._lost = True
                raise
            return
        polls = 0
        while not test():
            polls += 1
            if polls > _SPIN_POLLS and self.yields:
                # Let a rank that shares this core run: with more ranks than
                # cores, spinning starves the ranks being waited for.
                os.sched_yield()


def _oversubscribed(comm: MPI.Comm) -> bool:
    """Whether this node runs more of `comm`'s ranks than a rank has cores
    (collective).  Then a waiting rank yields its core after a few polls,
    so that the ranks it waits for can run.  Otherwise it spins, as MPI
    libraries' own waits do: yielding to another program that took a core
    (a busy laptop) costs that program's time slice at every sync; with one
    CPU-bound process beside 2 ranks on 2 cores, a one-message superstep
    took 120-134 us yielding, 72-83 us spinning."""
    here = MPI.Get_processor_name()
    names: list[str] = comm.allgather(here)
    return sum(name == here for name in names) > usable_cores()


class _Round:
    """One exchange of the NBX protocol (see the module's docstring)."""

    def __init__(self, transport: MPITransport, parity: int, record: bytes):
        self.t = transport
        self.parity = parity
        self.record = record
        self.agreement: Any = None          # the allreduce's request, once started
        self.incoming: Incoming = {}
        self.sends: list[Any] = []
        self.receives: list[Any] = []

    def send(self, outgoing: Outgoing) -> None:
        comm, pid, parity = self.t.comm, self.t.pid, self.parity
        for dest, frames in outgoing.items():
            if not frames:
                continue
            if len(frames) == 1 and len(frames[0]) < BIG_FRAME:       # the common small block
                pieces: list[Any] = [frames[0]]
                plan = None
            elif self.t._window.shares_memory_with(dest) and self.t._window.worth_handing(frames):
                table, inline = self.t._window.plan(frames, lambda run: _Plan(run).pieces)
                self.sends.append(comm.Issend([table, MPI.INT64_T], dest, _TAG_SHARED[parity]))
                self.sends += [self.t._pieces.Issend([piece, MPI.BYTE], dest, parity) for piece in inline]
                continue
            else:
                plan = _Plan(frames)
                pieces = plan.pieces
                if not plan.nbytes:
                    continue
            if dest == pid:
                mine = self.t._space.take(sum(len(piece) for piece in pieces))
                _copy_frames(pieces, mine, 0)
                self.incoming[pid] = [mine]
            elif len(pieces) == 1:
                self.sends.append(comm.Issend([pieces[0], MPI.BYTE], dest, _TAG_BLOCK[parity]))
            else:
                assert plan is not None
                self.sends.append(comm.Issend([plan.table, MPI.INT64_T], dest, _TAG_TABLE[parity]))
                self.sends += [self.t._pieces.Issend([piece, MPI.BYTE], dest, parity) for piece in pieces]

    def receive(self, source: int, tag: int, count: int, message: Any) -> None:
        """Take a block, or a table of pieces, that arrived from `source`."""
        if tag in _TAG_BLOCK:
            block = self.t._space.take(count)
            message.Recv([block, MPI.BYTE])
            self.incoming[source] = [block]
            return
        if tag in _TAG_SHARED:
            shared = np.empty(count // 8, np.int64)
            message.Recv([shared, MPI.INT64_T])
            pieces, parity = self.t._pieces, tag - _TAG_SHARED[0]
            self.incoming[source] = self.t._window.adopt(
                source, shared.tolist(), lambda view: self.receives.append(pieces.Irecv([view, MPI.BYTE], source, parity)))
            return
        table = np.empty(count // 8, np.int64)
        message.Recv([table, MPI.INT64_T])
        sizes = table.tolist()
        block = self.t._pool.take(sum(sizes))
        offset = 0
        for size in sizes:
            self.receives.append(self.t._pieces.Irecv([block[offset:offset + size], MPI.BYTE], source, tag - 2))
            offset += size
        self.incoming[source] = [block]

    def probe(self) -> None:
        """Receive every first message that has come; keep those of the next exchange."""
        comm, status = self.t.comm, self.t._status
        while True:
            message = comm.Improbe(MPI.ANY_SOURCE, MPI.ANY_TAG, status)
            if message is None:
                return
            found = (status.Get_source(), status.Get_tag(), status.Get_count(MPI.BYTE), message)
            if found[1] % 2 == self.parity:
                self.receive(*found)
            else:
                # the next exchange's, from a rank that finished this one
                # first: receive it now (matched messages must be), use it then
                self.t._early.append((*found[:3], _Early(self.t, *found)))

    def step(self) -> bool:
        """One look at the exchange: True once it is complete.  (Called in
        a loop while the other ranks are waited for: kept to few calls.)"""
        if self.agreement is not None:
            # Complete: every rank has started the allreduce, so all sends
            # were matched, so everything for this rank has been received.
            if self.agreement.Test():
                return True
        if self.t.comm.Iprobe(MPI.ANY_SOURCE, MPI.ANY_TAG):
            self.probe()
        elif self.agreement is None and not (self.sends and not MPI.Request.Testall(self.sends)):
            self.agreement = self.t._agreement.start(self.record)
        return False

    def finish(self) -> Incoming:
        if self.receives:
            MPI.Request.Waitall(self.receives)
        if self.sends:
            MPI.Request.Waitall(self.sends)     # complete already, but for p = 1
        return self.incoming


# A slot's header (`_Slots`), SLOT_HEAD bytes with its padding: the sender's
# record; the bytes of its block in this slot (BY_NBX: the block goes by NBX;
# TABLE_IN_SLOT - n: the slot holds n bytes of a table of pieces handed over
# in the shared window, see `_Slots`); whether the sender has any block that
# goes by NBX; the largest block it sent in slots or could have (the same in
# each of its slots).
_SLOT_HEADER: Final = struct.Struct(f"<{RECORD_SIZE}sqqq")
_COUNT: Final = struct.Struct("<q")
# A table of two pieces, a head in the slot and a region of the window: its
# count (6), then (0, the head's bytes, COPIED) and (where, bytes, HANDED_OVER).
_HEAD_AND_REGION: Final = struct.Struct("<7q")
BY_NBX: Final = -1
TABLE_IN_SLOT: Final = -2
SLOT_HEAD: Final = 64
SLOT_MIN: Final = 256              # bytes per slot, its header included
SLOT_MAX: Final = 4096
SHRINK_AFTER = 8                    # supersteps with data that need a smaller slot before it halves


class _Slots:
    """The dense protocol of small p: one Alltoall of a slot per pair (see
    the module's docstring), persistent where MPI 4 has it (MPI_Alltoall_init:
    its schedule is made once per slot size, not at every sync).  Costs one
    Alltoall of p slots of `size` bytes and a copy of each block that came
    in one; a superstep with a block larger than the largest slot adds an
    NBX exchange, unless the block's large buffers lie in the shared window
    (captured there at send for a rank of this node): then the slot carries
    the table of its pieces, as NBX would (`NodeWindow.plan`), and the
    receiver adopts them from the window.  The slot size grows at once to fit the largest block that
    could fit (a power of two, up to SLOT_MAX), and halves after SHRINK_AFTER
    supersteps in a row whose blocks all fit in half (supersteps without
    data count for nothing): every rank computes it from the same headers,
    so it is the same everywhere."""

    def __init__(self, comm: MPI.Comm, space: ReceiveSpace, window: NodeWindow):
        self.comm = comm
        self.pid = comm.Get_rank()
        self.nprocs = comm.Get_size()
        self._window = window
        self.more = False           # whether the last exchange has blocks that go by NBX
        self._space = space
        self._smaller = 0           # supersteps in a row that would have fitted in half the size
        self._request: Any = None
        self._persistent: Any = None
        self._own: memoryview | None = None     # a block to itself too large for its slot
        self._use(SLOT_MIN)

    def _use(self, size: int) -> None:
        """Slots of `size` bytes from now on: their buffers and collective."""
        self.size = size
        self._send = bytearray(self.nprocs * size)
        self._received = memoryview(bytearray(self.nprocs * size))
        if self._persistent is not None:
            self._persistent.Free()
        try:
            self._persistent = self.comm.Alltoall_init([self._send, size, MPI.BYTE],
                                                       [self._received, size, MPI.BYTE])
        except (AttributeError, NotImplementedError, MPI.Exception):
            self._persistent = None

    def start(self, outgoing: Outgoing, record: bytes) -> dict[int, Sequence[Buffer]]:
        """Start the Alltoall of this rank's slots; return the blocks that
        do not fit, by destination."""
        size, room = self.size, self.size - SLOT_HEAD
        send = self._send
        rest: dict[int, Sequence[Buffer]] = {}
        lengths = [0] * self.nprocs
        largest = 0
        for dest, frames in outgoing.items():
            if not frames:
                continue
            nbytes = lengths[dest] = sum(len(frame) for frame in frames)
            if nbytes > room:
                if dest == self.pid:        # to itself: no transfer, one copy as NBX makes
                    self._own = self._space.take(nbytes)
                    _copy_frames(frames, self._own, 0)
                    lengths[dest] = 0
                    continue
                table = self._window.table_bytes(frames) if self._window.shares_memory_with(dest) else 0
                if largest < table <= SLOT_MAX - SLOT_HEAD:
                    largest = table
                if 0 < table <= room:
                    lengths[dest] = TABLE_IN_SLOT - self._put_table(frames, dest * size + SLOT_HEAD)
                    continue
            if largest < nbytes <= SLOT_MAX - SLOT_HEAD:
                largest = nbytes
            if nbytes > room:
                rest[dest] = frames
                lengths[dest] = BY_NBX
                continue
            _copy_frames(frames, send, dest * size + SLOT_HEAD)
        later = bool(rest)
        for dest, nbytes in enumerate(lengths):
            _SLOT_HEADER.pack_into(send, dest * size, record, nbytes, later, largest)
        if self._persistent is not None:
            self._request = self._persistent
            self._request.Start()
        else:
            self._received = self._space.take(self.nprocs * size)
            self._request = self.comm.Ialltoall([send, size, MPI.BYTE], [self._received, size, MPI.BYTE])
        return rest

    def _put_table(self, frames: Sequence[Buffer], offset: int) -> int:
        """Write into the slot at `offset` the table of `frames`' pieces (its
        count of int64 first), then the bytes of the pieces not handed over;
        return the bytes written."""
        # A head and a buffer captured in the window (one array, the
        # commonest): its two-piece table written directly, not planned.
        if len(frames) == 2 and id(frames[0]) not in self._window.placed \
                and (region := self._window.hand_over(frames[1])) is not None:
            head = frames[0]
            _HEAD_AND_REGION.pack_into(self._send, offset, 6, 0, len(head), COPIED, region, len(frames[1]), HANDED_OVER)
            start = offset + _HEAD_AND_REGION.size
            self._send[start:start + len(head)] = head
            return _HEAD_AND_REGION.size + len(head)
        table, inline = self._window.plan(frames, _as_views)
        send = self._send
        _COUNT.pack_into(send, offset, len(table))
        start = offset + _COUNT.size
        end = start + 8 * len(table)
        send[start:end] = table
        return _copy_frames(inline, send, end) - offset

    def done(self) -> bool:
        """Whether the Alltoall has completed."""
        return bool(self._request.Test())

    def finish(self, record: bytes) -> tuple[bytes, Incoming]:
        """After completion: the records (one, if every rank's is `record`),
        and the blocks that came in slots, in memory of their own; sets
        `more` and the next size."""
        size, received = self.size, self._received
        copy = self._persistent is not None         # the persistent collective's buffer is used again
        records = []
        incoming: Incoming = {}
        more = largest = 0
        for source in range(self.nprocs):
            start = source * size
            theirs, nbytes, later, biggest = _SLOT_HEADER.unpack_from(received, start)
            records.append(theirs)
            if nbytes > 0:
                block = received[start + SLOT_HEAD:start + SLOT_HEAD + nbytes]
                if copy:
                    mine = self._space.take(nbytes)
                    mine[:] = block
                    block = mine
                incoming[source] = [block]
            elif nbytes <= TABLE_IN_SLOT:
                incoming[source] = self._adopt(source, received, start + SLOT_HEAD)
            more |= later
            largest = max(largest, biggest)
        if self._own is not None:
            incoming[self.pid], self._own = [self._own], None
        self.more = bool(more)
        if largest:
            self._resize(largest)
        same = all(theirs == record for theirs in records)
        return (record if same else b"".join(records)), incoming

    def _adopt(self, source: int, received: memoryview, offset: int) -> list[memoryview]:
        """The pieces of the block whose table `source` put in its slot at
        `offset` (see `_put_table`): its regions of the window, and the
        other pieces copied out of the slot."""
        count = _COUNT.unpack_from(received, offset)[0]
        if count == 6:              # perhaps a head and one region (see _put_table)
            _, at, nbytes, kind, region, size, region_kind = _HEAD_AND_REGION.unpack_from(received, offset)
            if at == 0 and kind == COPIED and region_kind == HANDED_OVER:
                head = self._space.take(nbytes)
                start = offset + _HEAD_AND_REGION.size
                head[:] = received[start:start + nbytes]
                return [head, self._window.region(source, region, size)]
        start = offset + _COUNT.size
        table = received[start:start + 8 * count].cast("q").tolist()
        return self._window.adopt(source, table, _SlotReader(received, start + 8 * count).read_into)

    def _resize(self, largest: int) -> None:
        wanted = max(SLOT_MIN, 1 << (largest + SLOT_HEAD - 1).bit_length())
        if wanted > self.size:
            self._smaller = 0
            self._use(wanted)
        elif wanted < self.size:
            self._smaller += 1
            if self._smaller >= SHRINK_AFTER:
                self._smaller = 0
                self._use(self.size // 2)
        else:
            self._smaller = 0

    def close(self) -> None:
        """Free the persistent collective (it is not active between exchanges)."""
        if self._persistent is not None and (self._request is None or self._request.Test()):
            self._persistent.Free()
            self._persistent = None


def _copy_frames(frames: Sequence[Buffer], into: Any, offset: int) -> int:
    """Copy `frames` one after another into `into` from `offset` on; return where they end."""
    for frame in frames:
        end = offset + len(frame)
        into[offset:end] = frame
        offset = end
    return offset


def _as_views(frames: list[Buffer]) -> list[memoryview]:
    """A run of small frames as pieces of their own (for `NodeWindow.plan`;
    the receiver's `lay_out` makes the run one view again)."""
    return [memoryview(frame) for frame in frames]


class _SlotReader:
    """The bytes of a slot after a table, piece after piece, in order."""

    def __init__(self, received: memoryview, offset: int):
        self._received = received
        self._offset = offset

    def read_into(self, view: memoryview) -> None:
        end = self._offset + view.nbytes
        view[:] = self._received[self._offset:end]
        self._offset = end


class _Early:
    """A first message of the next exchange, received ahead: it replays as a
    message already matched."""

    def __init__(self, transport: MPITransport, source: int, tag: int, count: int, message: Any):
        self._data = transport._space.take(count)
        message.Recv([self._data, MPI.BYTE])

    def Recv(self, buffer: list[Any]) -> None:
        memoryview(buffer[0]).cast("B")[:] = self._data


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
    ending the job, which the launching rank does when it exits.  Time the
    job spends stopped does not count (see RunningClock).
    """

    POLLS_PER_LOOK = 256            # polls of the exchange between looks for queries and the timeout
    GRACE_SECONDS = 2.0             # how long answers may take to come

    def __init__(self, comm: MPI.Comm, timeout: float, yields: bool = True):
        self._queries = comm.Dup()
        self._timeout = timeout
        self._yields = yields           # whether a waiting rank yields its core (see _oversubscribed)
        self._pid = comm.Get_rank()
        self._nprocs = comm.Get_size()
        # The exchanges this rank has entered (counted by the transport: some
        # complete without a wait), which it tells a rank that asks.
        self.exchanges = 0

    def close(self) -> None:
        self._queries.Free()

    def wait(self, test: Callable[[], bool], record: bytes) -> None:
        """Call `test` until it says the exchange is complete, or the
        timeout has passed and the late ranks are found (SyncTimeoutError)."""
        polls, waited = 0, None
        while not test():
            polls += 1
            if polls <= _SPIN_POLLS:
                continue        # spinning: microseconds in all, not worth a clock
            if waited is None:
                waited = RunningClock()
            if self._yields:
                os.sched_yield()
            seconds = waited.seconds()      # every poll, so that a gap means a stop
            if polls % self.POLLS_PER_LOOK:
                continue
            self._answer()
            if seconds > self._timeout and self._late_ranks_found(test, record):
                return

    def _answer(self) -> None:
        """Tell every rank that asked which exchange this rank waits at."""
        status = MPI.Status()
        asked = np.zeros(1, np.int64)
        while self._queries.Iprobe(MPI.ANY_SOURCE, _TAG_QUERY, status):
            self._queries.Recv([asked, MPI.INT64_T], status.Get_source(), _TAG_QUERY)
            self._queries.Send([np.array([self.exchanges], np.int64), MPI.INT64_T], status.Get_source(), _TAG_ANSWER)

    def _late_ranks_found(self, test: Callable[[], bool], record: bytes) -> bool:
        """Ask the others; raise SyncTimeoutError naming the late ranks, or
        return False if the exchange completed meanwhile."""
        mine = np.array([self.exchanges], np.int64)
        others = [rank for rank in range(self._nprocs) if rank != self._pid]
        for rank in others:
            self._queries.Send([mine, MPI.INT64_T], rank, _TAG_QUERY)
        answers: dict[int, int] = {}
        status, answer = MPI.Status(), np.zeros(1, np.int64)
        grace = RunningClock()
        while len(answers) < len(others) and grace.seconds() < self.GRACE_SECONDS:
            if test():
                return False
            self._answer()
            while self._queries.Iprobe(MPI.ANY_SOURCE, _TAG_ANSWER, status):
                self._queries.Recv([answer, MPI.INT64_T], status.Get_source(), _TAG_ANSWER)
                answers[status.Get_source()] = int(answer[0])
        waiting = sorted([self._pid] + [rank for rank, exchange in answers.items() if exchange == self.exchanges])
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

