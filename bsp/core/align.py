"""Alignment: every frame and every view of message data starts on an
ALIGN-byte boundary (a cache line), so that numpy data in it is aligned and
no two ranks write one line.  The arithmetic lives here once; the engine's
mailboxes, the record files and both transports use it."""

from __future__ import annotations

from typing import Final

ALIGN: Final = 64


def padding(nbytes: int) -> int:
    """Bytes needed after `nbytes` bytes (or an address) to reach the next ALIGN boundary."""
    return -nbytes % ALIGN


def aligned(nbytes: int) -> int:
    """`nbytes` rounded up to a multiple of ALIGN."""
    return nbytes + -nbytes % ALIGN
