"""The memory the ranks of one fork run share.

One anonymous shared mapping, made before the ranks are forked, holds:

- a control block: each rank's sync record, the bytes each rank sends each
  other rank (and where, when they are one run of bytes), where each rank's
  extent table lies, and progress counters that the supervisor reads; for
  ranks that share cores, per exchange the agreement of the records and each
  rank's inbox: the ranks that sent it something, listed as they arrive at
  the barrier (see bsp.fork.transport);
- per rank, two scratch arenas used in alternate exchanges, for data the
  receivers copy out.  A rank writes an exchange's data into one arena while
  the others may still be reading the previous exchange's data from its other
  arena; by the time it comes back to an arena, every reader has passed a
  barrier that it could only reach after reading it.  So one barrier per
  exchange suffices.  The control fields receivers read come in two halves
  for the same reason.
- per rank, a handover heap (see `heap`) for large data sent to one rank,
  which the receiver keeps instead of copying.

The arenas and heaps are reserved, not allocated: the mapping is made with
MAP_NORESERVE and pages only exist once written.  Because the mapping is
anonymous it has no name: nothing can leak, whichever process dies first,
and the memory returns to the system when the last process unmaps it.
"""

from __future__ import annotations

import mmap
import sys

from bsp.core.transport import RECORD_SIZE, superstep_of

# Upper bounds of the reservation: per arena or heap, and for the mapping.
AREA_BYTES = 1 << 36            # 64 GiB: the most one rank can send in one superstep
MAPPING_BYTES = 1 << 43         # 8 TiB of address space at most
_SMALLEST_AREA = 1 << 24
_AREAS_PER_RANK = 3             # scratch half 0, scratch half 1, handover heap

_MAP_NORESERVE = getattr(mmap, "MAP_NORESERVE", 0x4000 if sys.platform.startswith("linux") else 0x40)
_LINE = 64      # bytes of a cache line


def _round_up(n: int, multiple: int) -> int:
    return -(-n // multiple) * multiple


class SharedRegion:
    """Control block, scratch arenas and heaps of one fork run.  Made in the
    launching process before the fork, inherited by every rank.

    Control fields are int64 words, addressed by index in `words()`:
    sizes(half, dest) + source, direct(half, dest) + source, table(half, source) (+0 offset, +1 count),
    ARRIVED + rank, DEPARTED + rank, BARRIER.  The views it hands out must be
    let go of before `close`.
    """

    def __init__(self, nprocs: int):
        self.nprocs = p = nprocs
        records_bytes = _round_up(2 * p * RECORD_SIZE, _LINE)
        word = records_bytes // 8
        self._sizes = word                  # [2][p dest][p source]
        word += 2 * p * p
        self._direct = word                 # [2][p dest][p source]
        word += 2 * p * p
        self._tables = word                 # [2][p source][2]
        word += 4 * p
        self._agreements = word             # [2][8]: the reference record (5 words), differs, flags
        word += 16
        self._inboxes = word                # [2][p dest][1 + p]: a count, then the sources
        word += 2 * p * (p + 1)
        self.ARRIVED = _round_up(word, 8)
        self.DEPARTED = self.ARRIVED + _round_up(p, 8)
        self.BARRIER = self.DEPARTED + _round_up(p, 8)
        control = _round_up(8 * (self.BARRIER + 8), mmap.PAGESIZE)
        self.map, self.area_bytes = _reserve(control, _AREAS_PER_RANK * p)
        self._areas = control

    def words(self) -> memoryview:
        """The whole mapping as int64 words."""
        return memoryview(self.map).cast("q")

    def bytes(self) -> memoryview:
        return memoryview(self.map)

    def sizes(self, half: int, dest: int) -> int:
        """Index of the first of p words: bytes each source sends `dest`."""
        return self._sizes + (half * self.nprocs + dest) * self.nprocs

    def direct(self, half: int, dest: int) -> int:
        """Index of the first of p words: where each source's block for
        `dest` lies, when it is one run of bytes in the source's scratch
        arena (a byte offset in the mapping), else -1 (read the extent table)."""
        return self._direct + (half * self.nprocs + dest) * self.nprocs

    def table(self, half: int, source: int) -> int:
        """Index of two words: offset and length (in words) of `source`'s extent table."""
        return self._tables + 2 * (half * self.nprocs + source)

    def agreement(self, half: int) -> int:
        """Index of 8 words: the first rank's record (5 words), whether
        another rank's differed from it, the or of their flags."""
        return self._agreements + 8 * half

    def inbox(self, half: int, dest: int) -> int:
        """Index of the count, then the list, of the ranks that sent `dest`
        something (1 + p words)."""
        return self._inboxes + (half * self.nprocs + dest) * (self.nprocs + 1)

    def records(self, half: int) -> tuple[int, int]:
        """Byte range of the sync records of all ranks, in pid order."""
        size = self.nprocs * RECORD_SIZE
        return half * size, (half + 1) * size

    def scratch(self, pid: int, half: int) -> int:
        """Byte offset of a rank's scratch arena for exchanges of this half."""
        return self._areas + (_AREAS_PER_RANK * pid + half) * self.area_bytes

    def heap(self, pid: int) -> int:
        """Byte offset of a rank's handover heap."""
        return self._areas + (_AREAS_PER_RANK * pid + 2) * self.area_bytes

    def superstep(self, exchange: int, rank: int) -> int:
        """The superstep of the sync record `rank` wrote for its
        `exchange`-th exchange (as long as it is the last or the one before)."""
        start, _ = self.records((exchange - 1) % 2)
        offset = start + rank * RECORD_SIZE
        return superstep_of(self.map[offset:offset + RECORD_SIZE])

    def progress(self) -> tuple[list[int], list[int]]:
        """Exchanges entered and completed by each rank, read now."""
        words = self.words()
        try:
            return (words[self.ARRIVED:self.ARRIVED + self.nprocs].tolist(),
                    words[self.DEPARTED:self.DEPARTED + self.nprocs].tolist())
        finally:
            words.release()

    def close(self) -> None:
        """Unmap the region in this process (the launching process, after the
        run), which returns its memory once the ranks are gone."""
        self.map.close()


def _reserve(control: int, nareas: int) -> tuple[mmap.mmap, int]:
    """Map the control block and `nareas` areas, as large as the system
    lets us reserve (strict overcommit accounting refuses large reservations)."""
    area = min(AREA_BYTES, MAPPING_BYTES // nareas)
    area -= area % mmap.PAGESIZE
    flags = mmap.MAP_SHARED | mmap.MAP_ANONYMOUS | _MAP_NORESERVE
    while True:
        try:
            return mmap.mmap(-1, control + nareas * area, flags=flags), area
        except OSError:
            if area <= _SMALLEST_AREA:
                raise
            area //= 2
