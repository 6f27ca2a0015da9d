"""The ranks' standard streams: shared by every rank of a run (the fork
ranks inherit the launching process's; an MPI launcher gathers its ranks'),
so each rank writes whole lines, which never mix with another rank's; and a
rank about to end the job waits until its output has been read."""

from __future__ import annotations

import fcntl
import io
import os
import stat
import struct
import sys
import termios
import time

from bsp.script_hook import MUTED_STDOUT


def write_whole_lines() -> None:
    """Write each line of stdout and stderr in one piece.  Unbuffered output
    (PYTHONUNBUFFERED=1) would write a print's text and its newline
    separately, and another rank's line could fall between them."""
    for stream in (sys.stdout, sys.stderr):
        if isinstance(stream, io.TextIOWrapper):     # not a stream a test put in place
            try:
                stream.reconfigure(line_buffering=True, write_through=False)
            except ValueError:
                pass


def unmute() -> None:
    """On an MPI rank that `bsp run --mpi` muted until its first bsp.run
    (see bsp.script_hook): give it its stdout back, for the output of the
    programs it runs.  Nothing for any other process."""
    saved = os.environ.pop(MUTED_STDOUT, None)
    if saved is None:
        return
    flush()                     # what the script printed before goes to /dev/null
    os.dup2(int(saved), 1)
    os.close(int(saved))


def flush() -> None:
    """Flush stdout and stderr, ignoring streams that are closed or gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass


def wait_until_read(seconds: float) -> None:
    """Wait, at most `seconds`, until whatever reads this process's stdout
    and stderr through a pipe (an MPI launcher's proxy) has read all that
    was written: a process about to be killed, with every other rank of its
    job, must not take its last words with it."""
    deadline = time.monotonic() + seconds
    for fd in (1, 2):
        while _unread_bytes(fd) and time.monotonic() < deadline:
            time.sleep(0.001)


def _unread_bytes(fd: int) -> int:
    try:
        if not stat.S_ISFIFO(os.fstat(fd).st_mode):
            return 0
        unread: int = struct.unpack("i", fcntl.ioctl(fd, termios.FIONREAD, b"\0" * 4))[0]
        return unread
    except OSError:
        return 0
