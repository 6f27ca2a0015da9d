"""The memory the ranks of one fork run share.

One anonymous shared mapping, made before the ranks are forked, holds:

- a control block: each rank's sync record, the bytes each rank sends each
  other rank, where each rank's extent table lies, and progress counters that
  the supervisor reads;
- per rank, two send arenas used in alternate supersteps.  A rank writes a
  superstep's outgoing data into one arena while the others may still be
  reading the previous superstep's data from its other arena; by the time it
  comes back to an arena, every reader has passed a barrier that it could
  only reach after reading it.  So one barrier per superstep suffices.

The arenas are reserved, not allocated: the mapping is made with
MAP_NORESERVE and pages only exist once written.  Because the mapping is
anonymous it has no name: nothing can leak, whichever process dies first,
and the memory returns to the system when the last process unmaps it.
"""

from __future__ import annotations

import mmap
import sys
from typing import NamedTuple

import numpy as np

from ..record import RECORD_SIZE

# Upper bounds of the reservation: per arena, and for the whole mapping.
ARENA_BYTES = 1 << 36            # 64 GiB: the most one rank can send in one superstep
MAPPING_BYTES = 1 << 43          # 8 TiB of address space at most
_SMALLEST_ARENA = 1 << 24

_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0x40)
_LINE = 64   # bytes of a cache line; control fields of different ranks do not share one


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class ControlFields(NamedTuple):
    """Typed views of the control block (int64 numpy arrays).  Fields that
    receivers read after a barrier come in two halves, used in alternate
    exchanges like the arenas, so a rank that leaves a barrier early cannot
    overwrite what a slower rank has yet to read."""

    sizes: np.ndarray       # (2, p, p): bytes rank `row` sends rank `column`
    tables: np.ndarray      # (2, p, 2): offset and length (in int64) of each rank's extent table
    arrived: np.ndarray     # (p,): exchanges each rank has entered
    departed: np.ndarray    # (p,): exchanges each rank has completed
    barrier_count: np.ndarray   # (1,): ranks arrived at the current barrier


_FIELD_SHAPES = (("sizes", lambda p: (2, p, p)), ("tables", lambda p: (2, p, 2)),
                 ("arrived", lambda p: (p,)), ("departed", lambda p: (p,)),
                 ("barrier_count", lambda p: (1,)))


class SharedRegion:
    """Control block and send arenas of one fork run.  Made in the launching
    process before the fork, inherited by every rank.

    Views of the region are made on demand (`fields`, `records`, `arena`);
    the launching process must let go of any it made before `close`.
    """

    def __init__(self, nprocs: int):
        self.nprocs = nprocs
        self._shapes = [shape(nprocs) for _, shape in _FIELD_SHAPES]
        self._ints_offset = _round_up(2 * nprocs * RECORD_SIZE, _LINE)
        nints = sum(int(np.prod(shape)) for shape in self._shapes)
        control = _round_up(self._ints_offset + 8 * nints, mmap.PAGESIZE)
        self.map, self.arena_bytes = _reserve(control, 2 * nprocs)
        self._arena_offset = control

    def fields(self) -> ControlFields:
        views = []
        offset = self._ints_offset
        for shape in self._shapes:
            count = int(np.prod(shape))
            views.append(np.frombuffer(self.map, np.int64, count=count, offset=offset).reshape(shape))
            offset += 8 * count
        return ControlFields(*views)

    def progress(self) -> tuple[list[int], list[int]]:
        """Exchanges entered and completed by each rank, read now."""
        fields = self.fields()
        return fields.arrived.tolist(), fields.departed.tolist()

    def records(self, half: int) -> memoryview:
        """The sync records of all ranks, in pid order, for exchanges of this half."""
        size = self.nprocs * RECORD_SIZE
        return memoryview(self.map)[half * size:(half + 1) * size]

    def arena(self, pid: int, half: int) -> memoryview:
        start = self._arena_offset + (2 * pid + half) * self.arena_bytes
        return memoryview(self.map)[start:start + self.arena_bytes]

    def close(self) -> None:
        """Unmap the region in this process (the launching process, after the
        run), which returns its memory once the ranks are gone."""
        self.map.close()


def _reserve(control: int, narenas: int) -> tuple[mmap.mmap, int]:
    """Map the control block and `narenas` arenas, as large as the system
    lets us reserve (strict overcommit accounting refuses large reservations)."""
    arena = min(ARENA_BYTES, MAPPING_BYTES // narenas)
    arena -= arena % mmap.PAGESIZE
    flags = mmap.MAP_SHARED | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
    while True:
        try:
            return mmap.mmap(-1, control + narenas * arena, flags=flags), arena
        except OSError:
            if arena <= _SMALLEST_ARENA:
                raise
            arena //= 2
