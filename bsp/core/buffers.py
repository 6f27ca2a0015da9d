"""Memory for message data: aligned, and reused while it is warm.

A fresh large allocation costs a page fault per page the first time it is
written (slower than the copy itself), and a program that exchanges arrays
superstep after superstep would pay that every time.  `take` hands out views
of pooled buffers instead; a buffer goes back to the pool when the last
object that refers to its view is gone (the received numpy arrays, say), so
the next superstep writes into memory that is already mapped.
"""

from __future__ import annotations

import weakref
from typing import Any, Callable, Final, Sequence

import numpy as np

from bsp.core.align import ALIGN, padding

POOLED_BYTES: Final = 1 << 20      # smaller buffers come from malloc, which reuses them well already
KEEP_BYTES: Final = 1 << 30        # at most this much idle memory stays in the pool


# From this size on, `copy_into` copies with streaming stores where it can:
# the copy is larger than a core's share of the cache, and the sender does
# not read it again.  (Below, the receiver finds a fresh copy still in the cache.)
STREAMING_FROM: Final = 8 << 20


def _streaming_copier() -> Callable[[memoryview, memoryview], None] | None:
    """The copy with streaming stores (C), part of the compiled build only:
    None in a process that runs pure Python (bsp/compiled.py refuses to load it)."""
    try:
        from bsp.core import streaming_copy
    except ImportError:
        return None
    return streaming_copy.copy_into


_copy_streaming: Final = _streaming_copier()


def copy_into(dest: memoryview, src: memoryview) -> None:
    """Copy the bytes of `src` (contiguous, one-dimensional) to the start of
    `dest`: the copy a send makes of an array, into send space.  From
    STREAMING_FROM bytes on, with streaming stores in the compiled build
    (bsp/core/streaming_copy.c says why)."""
    if src.nbytes >= STREAMING_FROM and _copy_streaming is not None:
        _copy_streaming(dest, src)
    else:
        dest[:src.nbytes] = src


# What `on_release` waits for: by the id of each weak reference, the
# reference itself (kept alive, or its callback would never come), the
# callback and its arguments.
_WAITING: dict[int, tuple[Any, Callable[..., None], tuple[Any, ...]]] = {}


def on_release(obj: Any, callback: Callable[..., None], *args: Any) -> None:
    """Call `callback(*args)` once `obj` is gone: weakref.finalize without
    its bookkeeping for the interpreter's exit, at a quarter of its cost
    (0.45 against 1.9 us), which a superstep that receives an array paid."""
    ref = weakref.ref(obj, _released)
    _WAITING[id(ref)] = (ref, callback, args)


def _released(ref: Any) -> None:
    _, callback, args = _WAITING.pop(id(ref))
    callback(*args)


def aligned_empty(nbytes: int) -> np.ndarray:
    """Uninitialized bytes starting at an ALIGN-byte boundary, not pooled."""
    raw = np.empty(nbytes + ALIGN, np.uint8)
    start = padding(raw.__array_interface__["data"][0])
    return raw[start:start + nbytes]


class BufferPool:
    """Warm buffers of POOLED_BYTES or more, recycled by size."""

    def __init__(self, keep_bytes: int = KEEP_BYTES):
        self._idle: list[np.ndarray] = []       # raw allocations, oldest first
        self._idle_bytes = 0
        self._keep_bytes = keep_bytes

    def take(self, nbytes: int) -> memoryview:
        """A writable, aligned view of `nbytes` uninitialized bytes."""
        if nbytes < POOLED_BYTES:
            return aligned_empty(nbytes).data
        raw = self._reuse(nbytes)
        if raw is None:
            raw = np.empty(nbytes + ALIGN, np.uint8)
        start = padding(raw.__array_interface__["data"][0])
        view = raw[start:start + nbytes]
        on_release(view, self._give_back, raw)
        return view.data

    def _reuse(self, nbytes: int) -> np.ndarray | None:
        """The idle buffer that fits best, if one is no more than twice as large."""
        fits = [raw for raw in self._idle if nbytes + ALIGN <= raw.nbytes <= 2 * nbytes + ALIGN]
        if not fits:
            return None
        raw = min(fits, key=lambda candidate: candidate.nbytes)
        self._idle = [other for other in self._idle if other is not raw]
        self._idle_bytes -= raw.nbytes
        return raw

    def _give_back(self, raw: np.ndarray) -> None:
        self._idle.append(raw)
        self._idle_bytes += raw.nbytes
        while self._idle_bytes > self._keep_bytes:
            self._idle_bytes -= self._idle.pop(0).nbytes


SLAB_BYTES: Final = 1 << 20        # small receive space is carved from slabs of this size


class ReceiveSpace:
    """Aligned memory for received blocks, which the receiver keeps.  A
    small block is carved from a slab, front to back (one allocation serves
    many supersteps, and a slab is freed once nothing received in it is
    referenced); a large one comes from `pool`.  Blocks of up to 64 KiB
    (a 16 KiB array, say) are small: a malloc of their own, each superstep,
    costs more than their copy."""

    SMALL = SLAB_BYTES // 16        # bounds what one kept small block can hold on to

    def __init__(self, pool: BufferPool):
        self._pool = pool
        self._rest = memoryview(bytearray())

    def take(self, nbytes: int) -> memoryview:
        """A writable view of `nbytes` uninitialized bytes, ALIGN-aligned."""
        if nbytes > self.SMALL:
            return self._pool.take(nbytes)
        if nbytes > len(self._rest):
            self._rest = aligned_empty(SLAB_BYTES).data
        space, self._rest = self._rest[:nbytes], self._rest[nbytes + (-nbytes % ALIGN):]
        return space


def byte_view(array: np.ndarray) -> memoryview:
    """The bytes of `array` as a flat view (a copy only if the array is not
    C-contiguous).  Through numpy, not memoryview.cast, which refuses empty
    arrays and dtypes the buffer protocol cannot describe (datetime64)."""
    return np.ascontiguousarray(array).reshape(-1).view(np.uint8).data


COPIED, HANDED_OVER = 0, 1      # kinds of a piece in `lay_out`'s extents


def lay_out(extents: Sequence[int], buffer: memoryview | None, position: int,
            fill: Callable[[memoryview, int], None], handed: Callable[[int, int], memoryview]
            ) -> tuple[list[memoryview], int]:
    """The pieces of a received block, from its extents, (offset, length,
    kind) each, in block order: each run of copied pieces is one view of
    `buffer`, from `position` on, at an address congruent to its offset in
    the block (numpy data in it stays aligned; a frame cut into chunks is
    whole again), `fill(view, offset)` copying each piece in; a piece
    handed over is `handed(offset, length)`, as it lies.  Returns the views
    and the position after them.  `buffer` needs `room_for(extents)` bytes
    from `position` on."""
    pieces: list[memoryview] = []
    logical = 0
    run_start: int | None = None
    for i in range(0, len(extents), 3):
        offset, length, kind = extents[i:i + 3]
        if kind == COPIED:
            assert buffer is not None
            if run_start is None:
                position += padding(position - logical)
                run_start = position
            fill(buffer[position:position + length], offset)
            position += length
        else:
            if run_start is not None:
                pieces.append(buffer[run_start:position])     # type: ignore[index]
                run_start = None
            pieces.append(handed(offset, length))
        logical += length
    if run_start is not None:
        pieces.append(buffer[run_start:position])     # type: ignore[index]
    return pieces, position


def room_for(extents: Sequence[int]) -> int:
    """The bytes `lay_out` may use for the copied pieces of `extents`: each
    one's length and, at most, ALIGN bytes of padding before it."""
    return sum(extents[i + 1] + ALIGN for i in range(0, len(extents), 3) if extents[i + 2] == COPIED)
