"""Semaphores the ranks of a fork run share, that leave nothing behind.

multiprocessing's semaphores are named POSIX semaphores: each is a file in
/dev/shm from its creation until its name is unlinked a few instructions
later.  A launching process killed (SIGKILL) in between leaves the file for
good, and a full /dev/shm refuses them.  On Linux the semaphores here are
unnamed ones instead (sem_init with pshared=1, through ctypes; operated by
multiprocessing's C code, see UnnamedSemaphore), in an
anonymous shared mapping made before the fork: there is no name, so nothing
to leave, and the memory goes with the last process that maps it.
Elsewhere (macOS has no unnamed process-shared semaphores) they are
multiprocessing's.

`Context` offers the part of a multiprocessing context the barriers use:
`Semaphore(value)` and `Lock()`, whose `acquire(block=True, timeout=None)`
and `release()` behave alike.
"""

from __future__ import annotations

import ctypes
import mmap
import multiprocessing
import sys
from _multiprocessing import SemLock  # type: ignore[import-not-found]  # (no stubs: the C half of multiprocessing)
from types import TracebackType
from typing import Any, Callable

_SLOT = 64                  # bytes per semaphore: a sem_t (32 on 64-bit Linux), on a cache line of its own
_CHUNK = mmap.PAGESIZE      # semaphores are carved out of mappings of this size
_SEMAPHORE = 1              # SemLock's kind for a counting semaphore (multiprocessing.synchronize.SEMAPHORE)


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.sem_init.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint]
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


class UnnamedSemaphore:
    """A process-shared counting semaphore in anonymous shared memory.

    sem_init makes it, through ctypes; it is then operated by the C code of
    multiprocessing's own semaphores (`_multiprocessing.SemLock`, given the
    address as its handle and no name), since a barrier waits on it every
    superstep: a ctypes call costs about 0.4 us, which measured as 1.8 us
    more per fork superstep.  Closing such a handle (SemLock's last act)
    finds no named semaphore there and does nothing.
    """

    def __init__(self, address: int, value: int, keep: object):
        self._keep = keep           # the mapping, which must outlive us
        if _LIBC.sem_init(address, 1, value) != 0:
            raise OSError(ctypes.get_errno(), "sem_init failed")
        self._semaphore = SemLock._rebuild(address, _SEMAPHORE, SemLock.SEM_VALUE_MAX, None)
        # acquire(block=True, timeout=None) -> bool, and release(), in C;
        # acquire runs signal handlers on EINTR and waits on.
        self.acquire: Callable[..., bool] = self._semaphore.acquire
        self.release: Callable[[], None] = self._semaphore.release

    def __enter__(self) -> bool:
        return self.acquire()

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 traceback: TracebackType | None) -> None:
        self.release()


class Context:
    """Makes the semaphores of one run (in the launching process, before the fork)."""

    def __init__(self) -> None:
        self._fallback = multiprocessing.get_context("fork") if _LIBC is None else None
        self._chunk: mmap.mmap | None = None
        self._base = 0
        self._used = _CHUNK

    def Semaphore(self, value: int = 1) -> Any:
        if self._fallback is not None:
            return self._fallback.Semaphore(value)
        if self._used + _SLOT > _CHUNK:
            self._chunk = mmap.mmap(-1, _CHUNK, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
            self._base = ctypes.addressof(ctypes.c_char.from_buffer(self._chunk))
            self._used = 0
        semaphore = UnnamedSemaphore(self._base + self._used, value, self._chunk)
        self._used += _SLOT
        return semaphore

    def Lock(self) -> Any:
        if self._fallback is not None:
            return self._fallback.Lock()
        return self.Semaphore(1)
