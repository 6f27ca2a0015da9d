"""Semaphores the ranks of a fork run share, that leave nothing behind.

multiprocessing's semaphores are named POSIX semaphores: each is a file in
/dev/shm from its creation until its name is unlinked a few instructions
later.  A launching process killed (SIGKILL) in between leaves the file for
good, and a full /dev/shm refuses them.  On Linux the semaphores here are
unnamed ones instead (sem_init with pshared=1, through ctypes), in an
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
import errno
import mmap
import multiprocessing
import sys
import time
from types import TracebackType
from typing import Any

_SLOT = 64                  # bytes per semaphore: a sem_t (32 on 64-bit Linux), on a cache line of its own
_CHUNK = mmap.PAGESIZE      # semaphores are carved out of mappings of this size


class _Timespec(ctypes.Structure):
    _fields_ = [("tv_sec", ctypes.c_long), ("tv_nsec", ctypes.c_long)]


def _libc() -> Any:
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        for name in ("sem_init", "sem_post", "sem_trywait", "sem_timedwait", "sem_wait"):
            getattr(libc, name).argtypes = [ctypes.c_void_p] + (
                [ctypes.c_int, ctypes.c_uint] if name == "sem_init" else
                [ctypes.POINTER(_Timespec)] if name == "sem_timedwait" else [])
        return libc
    except (OSError, AttributeError):
        return None


_LIBC = _libc()


class UnnamedSemaphore:
    """A process-shared counting semaphore in anonymous shared memory."""

    def __init__(self, address: int, value: int, keep: object):
        self._address = address
        self._keep = keep           # the mapping, which must outlive us
        if _LIBC.sem_init(address, 1, value) != 0:
            raise OSError(ctypes.get_errno(), "sem_init failed")

    def release(self) -> None:
        _LIBC.sem_post(self._address)

    def acquire(self, block: bool = True, timeout: float | None = None) -> bool:
        """Take one unit; False when none came (at once, or within `timeout` s)."""
        if _LIBC.sem_trywait(self._address) == 0:
            return True
        if not block:
            return False
        deadline = None if timeout is None else time.time() + timeout
        while True:
            # Returning to Python between waits lets signal handlers run (EINTR).
            if deadline is None:
                if _LIBC.sem_wait(self._address) == 0:
                    return True
            else:
                whole, fraction = divmod(deadline, 1.0)
                moment = _Timespec(int(whole), int(fraction * 1e9))
                if _LIBC.sem_timedwait(self._address, ctypes.byref(moment)) == 0:
                    return True
            failure = ctypes.get_errno()
            if failure == errno.ETIMEDOUT:
                return False
            if failure != errno.EINTR:
                raise OSError(failure, "waiting on a semaphore failed")

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
