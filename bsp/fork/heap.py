"""One rank's handover heap: shared memory whose regions the rank fills with
data it sends to a single destination, and then gives away.

A large array sent to one rank is copied once, at `send`, into a region of
the sender's heap; the receiver then uses the region as the memory of the
array it receives, instead of copying it again.  The region belongs to the
receiver from then on.  When the receiver's last reference to it is gone, the
receiver writes FREE into the region's header, and the sender, which alone
allocates in its heap, takes the region back the next time it needs room.

Header of a region (HEADER bytes before its data): the state word.
"""

from __future__ import annotations

import bisect

from bsp.core.align import ALIGN

HEADER = ALIGN
FREE, IN_USE = 0, 1


def mark_free(words: memoryview, offset: int) -> None:
    """Receiver side: give back the region whose data starts at `offset`
    (a byte offset in the mapping that `words` views as int64)."""
    words[(offset - HEADER) // 8] = FREE


class HandoverHeap:
    """The allocator of one rank's heap, [base, base + capacity) of the
    mapping; used only by that rank."""

    def __init__(self, words: memoryview, base: int, capacity: int):
        self._words = words
        self._base = base
        self._end = base + capacity
        self._top = base                        # nothing above has ever been used
        self._free: list[tuple[int, int]] = []  # (start, size), sorted, coalesced
        self._given: dict[int, int] = {}        # start -> size of regions not yet back

    def allocate(self, nbytes: int) -> int:
        """Room for `nbytes`; returns the offset of its data.  Raises
        MemoryError when the heap is full."""
        size = -(-(nbytes + HEADER) // ALIGN) * ALIGN
        self._take_back()
        start = self._first_fit(size)
        if start is None:
            if self._top + size > self._end:
                raise MemoryError(self._why_full(size))
            start, self._top = self._top, self._top + size
        self._words[start // 8] = IN_USE
        self._given[start] = size
        return start + HEADER

    def _why_full(self, size: int) -> str:
        """Whom to blame: receivers that hold on to what they were sent, or
        the heap's size, which the address space the run could reserve
        limits (ulimit -v, strict overcommit)."""
        capacity, held = self._end - self._base, sum(self._given.values())
        if size + held > capacity and size <= capacity and held:
            return (f"the fork backend's handover heap of {capacity} bytes is full: receivers still hold "
                    f"{held} bytes of the arrays sent to them, and {size} more are needed")
        return (f"a message of {size} bytes does not fit the fork backend's handover heap of {capacity} bytes, "
                f"which is as large as the address space the run could reserve allowed (ulimit -v, "
                f"vm.overcommit_memory): raise that limit, or send the data in smaller pieces")

    def free(self, offset: int) -> None:
        """Sender side: take back a region that was never sent."""
        self._words[(offset - HEADER) // 8] = FREE

    def _take_back(self) -> None:
        freed = [start for start in self._given if self._words[start // 8] == FREE]
        for start in freed:
            self._insert(start, self._given.pop(start))

    def _first_fit(self, size: int) -> int | None:
        for i, (start, length) in enumerate(self._free):
            if length >= size:
                if length == size:
                    del self._free[i]
                else:
                    self._free[i] = (start + size, length - size)
                return start
        return None

    def _insert(self, start: int, size: int) -> None:
        i = bisect.bisect(self._free, (start, size))
        if i < len(self._free) and start + size == self._free[i][0]:
            size += self._free.pop(i)[1]
        if i and self._free[i - 1][0] + self._free[i - 1][1] == start:
            start, size = self._free[i - 1][0], self._free[i - 1][1] + size
            del self._free[i - 1]
            i -= 1
        if start + size == self._top:
            self._top = start           # the top of the heap shrinks back
        else:
            self._free.insert(i, (start, size))
