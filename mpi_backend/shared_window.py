"""Shared memory between the ranks of one node: the capture at `send` is
the transfer, as on the fork backend.

Every rank of a run allocates a segment of one MPI-3 shared-memory window
(`Win.Allocate_shared` on `Split_type(COMM_TYPE_SHARED)`) and maps the
segments of the other ranks of its node.  A large buffer captured for one
destination (`Transport.send_buffer(..., exclusive=True)`) is a region of
the sender's segment, managed as the fork backend's handover heap
(`bsp.fork.heap`).  When it goes to a rank of the same node, the exchange
sends only where it lies (a table of pieces: regions of the segment, and
the bytes of the other frames, which travel as before); the receiver uses
the region as the memory of the array it receives, and gives it back (a
word in the region's header, which the sender reads when it next
allocates) once its last reference is gone.  So 64 MiB cost one copy, at
`send`, instead of the copy and MPI's transfer.  A large frame of the
caller's own memory (an unbuffered send) is written into a region at the
exchange, and handed over the same way.

Where the window is not used, and the MPI path of `transport` carries
everything: a rank alone on its node (every destination is remote);
BSP_MPI_SHARED_WINDOW=0; MPICH told to use no shared memory
(MPIR_CVAR_NOLOCAL=1, which also makes each rank a node of its own); Open
MPI unless BSP_MPI_SHARED_WINDOW=1 (see `_wanted`); a window that cannot
be allocated.  Large buffers for several destinations,
for the rank itself or for a rank of another node are captured into the
segment too (it was asked for before the destination was known) and sent
from there by MPI; their region is freed when the exchange is over.

Lifetimes.  The segment is reserved, not filled: pages exist once
written, in the node's /dev/shm (tmpfs), whose free space bounds the
reservation (a write beyond what tmpfs can hold would kill the rank).  The
window's file has no name (MPICH) once every rank has mapped it, so nothing is left
in /dev/shm whichever way a run ends.  At the end of a run (`close`) the
window is freed, collectively, unless a rank of the node still refers to
memory it received through it (arrays kept past the run: in a global, in a
traceback): then every rank keeps its mapping until the job ends, instead
of leaving that rank with arrays on memory that is gone.
"""

from __future__ import annotations

import gc
import os
from array import array
from typing import Any, Sequence, cast

import numpy as np

from bsp.core.buffers import COPIED, HANDED_OVER, ReceiveSpace, copy_into, lay_out, on_release, room_for
from bsp.fork.heap import HandoverHeap, mark_free
from bsp.core.transport import Buffer

from mpi4py import MPI    # imported after mpi_backend.transport has set the thread level

HANDOVER_MIN = 1 << 16          # smaller buffers are cheaper to send than to hand over
SEGMENT_BYTES = 1 << 36         # the most one rank reserves (64 GiB of address space)
_SHM = "/dev/shm"
_kept: list[Any] = []           # windows whose memory a rank still used at the end of its run


def _reservation(ranks_here: int) -> int:
    """Bytes each of `ranks_here` ranks may reserve: a quarter of the free
    space of /dev/shm shared between them, at most SEGMENT_BYTES."""
    try:
        stat = os.statvfs(_SHM)
        free = stat.f_bavail * stat.f_frsize
    except OSError:
        return 0
    share = min(SEGMENT_BYTES, free // (4 * ranks_here))
    return share - share % (1 << 21)


class NodeWindow:
    """One rank's view of the window of its node (see the module's docstring)."""

    __deletable__ = ["_heap"]      # mypyc: `close` drops the heap's view of the segment before freeing it

    def __init__(self, comm: MPI.Comm, space: ReceiveSpace):
        """Collective over `comm`.  `space`: where inline pieces are received."""
        self._space = space
        self._win: Any = None
        self._node: Any = None
        self._segments: dict[int, np.ndarray] = {}       # comm rank -> its segment, as bytes
        self._words: dict[int, memoryview] = {}          # comm rank -> its segment, as int64 words
        self.placed: dict[int, tuple[int, memoryview | None]] = {}   # id(view) -> (offset, view) of this superstep
        self.held = 0                                    # regions of the others' segments in use here
        self.pid = comm.Get_rank()
        if not _wanted():
            return
        node = cast(MPI.Intracomm, comm.Split_type(MPI.COMM_TYPE_SHARED))
        size = node.Get_size()
        reserve = node.allreduce(_reservation(size), op=MPI.MIN) if size > 1 else 0
        if reserve < (1 << 24):
            node.Free()
            return
        self._node = node
        self._win = MPI.Win.Allocate_shared(reserve, 1, comm=node)
        ranks = MPI.Group.Translate_ranks(node.Get_group(), list(range(size)), comm.Get_group())
        for node_rank, rank in enumerate(ranks):
            memory, _ = self._win.Shared_query(node_rank)
            self._segments[rank] = np.frombuffer(memory, np.uint8, count=reserve)
            self._words[rank] = memoryview(self._segments[rank]).cast("q")   # type: ignore[arg-type]
        self._heap = HandoverHeap(self._words[self.pid], 0, reserve)

    def shares_memory_with(self, rank: int) -> bool:
        """Whether a buffer placed here can be handed over to `rank`."""
        return rank in self._segments and rank != self.pid

    def send_buffer(self, nbytes: int, smallest: int = HANDOVER_MIN) -> memoryview | None:
        """A region of this rank's segment for a buffer sent to one rank, or
        None (no window, under `smallest` bytes, or the segment is full)."""
        if self._win is None or nbytes < smallest:
            return None
        try:
            offset = self._heap.allocate(nbytes)
        except MemoryError:         # held by the receivers: this one goes by MPI
            return None
        view = self._segments[self.pid][offset:offset + nbytes].data
        self.placed[id(view)] = (offset, view)
        return view

    def worth_handing(self, frames: Sequence[Buffer]) -> bool:
        """Whether `frames` hold a buffer to hand over: one captured here,
        or a large one of the caller's (an unbuffered send)."""
        return any(id(frame) in self.placed or len(frame) >= HANDOVER_MIN for frame in frames)

    def table_bytes(self, frames: Sequence[Buffer]) -> int:
        """The bytes that `frames` take as a table of pieces, one entry per
        frame after its count, and the bytes of the frames not handed over,
        when every large frame among them lies captured here, so that
        `plan` allocates nothing; 0 when none does, or another one is large
        (an unbuffered send, written into a region by `plan`)."""
        inline = 0
        placed = False
        for frame in frames:
            if id(frame) in self.placed:
                placed = True
            elif len(frame) >= HANDOVER_MIN:
                return 0
            else:
                inline += len(frame)
        return 8 + 24 * len(frames) + inline if placed else 0

    def hand_over(self, frame: Buffer) -> int | None:
        """Where `frame` lies in this rank's segment, if it is a buffer
        captured here this superstep, which now goes to its destination
        (`settle` no longer takes it back); else None."""
        found = self.placed.pop(id(frame), None)
        return None if found is None else found[0]

    def _written(self, frame: Buffer) -> int | None:
        """A large frame of the caller's own memory (an unbuffered send)
        written into a region now, and where: this write is its transfer,
        as on fork."""
        nbytes = memoryview(frame).nbytes
        if nbytes < HANDOVER_MIN:
            return None
        try:
            offset = self._heap.allocate(nbytes)
        except MemoryError:
            return None
        copy_into(self._segments[self.pid][offset:offset + nbytes].data, memoryview(frame).cast("B"))
        return offset

    def plan(self, frames: Sequence[Buffer], split: Any) -> tuple[array[int], list[memoryview]]:
        """How `frames` go to a rank of this node: the table of pieces,
        (offset, size, kind) each as `bsp.core.buffers.lay_out` reads them, and
        the inline pieces (COPIED: MPI carries them, as `split(run)` cuts a
        run of other frames); the regions among the frames are HANDED_OVER."""
        table: list[int] = []
        inline: list[memoryview] = []
        run: list[Buffer] = []

        def end_run() -> None:
            for piece in split(run) if run else ():
                table.extend((0, piece.nbytes, COPIED))
                inline.append(piece)
            run.clear()

        for frame in frames:
            region = self.hand_over(frame)
            if region is None:
                region = self._written(frame)
            if region is None:
                run.append(frame)
            else:
                end_run()
                table.extend((region, len(frame), HANDED_OVER))
        end_run()
        return array("q", table), inline

    def settle(self) -> None:
        """After an exchange: take back the regions captured but not handed
        over (sent by MPI, or never sent)."""
        for offset, _ in self.placed.values():
            self._heap.free(offset)
        self.placed.clear()

    def adopt(self, source: int, table: list[int], receive: Any) -> list[memoryview]:
        """The pieces of a block `source` sent as a table of pieces: its
        regions as memory of this rank; the inline pieces received (by
        `receive(view)`, in order) into one buffer, each run of them one
        piece (a frame cut into chunks is whole again), at an address
        congruent to its offset in the block."""
        room = room_for(table)
        buffer = self._space.take(room) if room else None
        pieces, _ = lay_out(table, buffer, 0, lambda view, _: receive(view),
                            lambda offset, size: self.region(source, offset, size))
        return pieces

    def region(self, source: int, offset: int, size: int) -> memoryview:
        """The region at `offset` of `source`'s segment, handed over to this
        rank: memory of its own, given back when the last object on it is gone."""
        region = self._segments[source][offset:offset + size]
        self.held += 1
        on_release(region, self._release, self._words[source], offset)
        return region.data

    def _release(self, words: memoryview, offset: int) -> None:
        mark_free(words, offset)
        self.held -= 1

    def close(self, lost: bool) -> None:
        """Free the window (collective over the node) unless a rank still
        uses memory it received; `lost`: the run ended in a sync timeout,
        where the late ranks will not come: keep it, the job is ending."""
        if self._win is None:
            return
        self.placed.clear()
        if lost:
            _kept.append(self._win)
            return
        if self.held:
            gc.collect()        # what is held may be garbage in a cycle
        if self._node.allreduce(self.held, op=MPI.MAX):
            _kept.append(self._win)
        else:
            self._segments.clear()
            self._words.clear()
            del self._heap
            self._win.Free()
        self._node.Free()
        self._win = None


def _wanted() -> bool:
    """Whether to make the window.  Not where MPICH uses no shared memory
    (MPIR_CVAR_NOLOCAL=1).  BSP_MPI_SHARED_WINDOW=0 or 1 decides; by default
    yes, but under Open MPI, whose UCX one-sided component prints an error
    for every window made on a machine without UCX devices (its pip wheel on
    a laptop, for one): a run must not print errors that are not its own."""
    if os.environ.get("MPIR_CVAR_NOLOCAL") == "1":
        return False
    chosen = os.environ.get("BSP_MPI_SHARED_WINDOW")
    if chosen is not None:
        return chosen != "0"
    return MPI.get_vendor()[0] != "Open MPI"
