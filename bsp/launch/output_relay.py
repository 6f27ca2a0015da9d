"""The output of forked ranks, relayed line by line through the launching
process, where the ranks cannot write whole lines themselves.

The ranks of a fork run write to the launching process's standard streams.
On a terminal or a pipe each rank writes whole lines (`bsp.launch.stdio`), which
never mix.  In a Jupyter kernel they cannot: its streams (ipykernel's
OutStream) send what they are given to the notebook in pieces, and lines of
different ranks come out mixed mid-line.  There, and wherever lines are to
be tagged with their rank (the %%bsp magic), each rank gets a pipe of its own
for stdout and one for stderr, on file descriptors 1 and 2 (so C libraries and
subprocesses write there too); a thread of the launching process reads the
pipes and writes each complete line, whole, to its own sys.stdout or
sys.stderr.  A last line without its newline gets one when the rank ends.
"""

from __future__ import annotations

import contextlib
import contextvars
import io
import os
import selectors
import sys
import threading
from typing import Iterator, TextIO

_tag: str | None = None         # a format with {pid}, while the %%bsp magic runs
_current: "Relay | None" = None     # the relay of the run being forked
_DRAIN_SECONDS = 2.0            # how long the relay waits for pipes held open by a rank's leftover children


@contextlib.contextmanager
def tagged(tag: str) -> Iterator[None]:
    """Within this block, fork runs relay their ranks' output, each line
    preceded by `tag` formatted with the rank's pid ("[rank {pid}] ")."""
    global _tag
    previous, _tag = _tag, tag
    try:
        yield
    finally:
        _tag = previous


def needed() -> bool:
    """Whether a fork run started now must relay its ranks' output: when a
    tag is asked for, or when this process's streams cannot be made to
    write whole lines (they have no `reconfigure`: a Jupyter kernel's)."""
    return _tag is not None or any(stream is not None and not hasattr(stream, "reconfigure")
                                   for stream in (sys.stdout, sys.stderr))


def prepare(nprocs: int) -> "Relay | None":
    """Before the ranks are forked: the relay of the run, if it needs one
    (then `start` it once they are forked, and `finish` it once they are gone)."""
    global _current
    _current = Relay(nprocs, _tag or "") if needed() else None
    return _current


def become_rank(pid: int) -> None:
    """In a forked rank: write to this rank's pipes, if the run has them."""
    if _current is not None:
        _current.become_rank(pid)


class Relay:
    """The pipes of one run's ranks, and the thread that reads them."""

    def __init__(self, nprocs: int, tag: str):
        self._tag = tag
        self._pipes = [(os.pipe(), os.pipe()) for _ in range(nprocs)]
        self._streams: tuple[TextIO, TextIO] = (sys.stdout, sys.stderr)
        self._thread: threading.Thread | None = None
        self._stop = threading.Event()

    def become_rank(self, pid: int) -> None:
        for rank, pipes in enumerate(self._pipes):
            for reader, writer in pipes:
                os.close(reader)
                if rank != pid:
                    os.close(writer)
        for fd, (_, writer) in zip((1, 2), self._pipes[pid]):
            os.dup2(writer, fd)
            os.close(writer)
        sys.stdout = _text_stream(1)
        sys.stderr = _text_stream(2)

    def start(self) -> None:
        global _current
        _current = None
        for pipes in self._pipes:
            for _, writer in pipes:
                os.close(writer)
        # The thread writes with the caller's context: a kernel's streams
        # keep there which cell the output belongs to.
        context = contextvars.copy_context()
        self._thread = threading.Thread(target=context.run, args=(self._pump,), name="bsp-output-relay",
                                        daemon=True)
        self._thread.start()

    def finish(self) -> None:
        """The ranks are gone: relay what is left, then close the pipes."""
        if self._thread is not None:
            self._thread.join(_DRAIN_SECONDS)
            self._stop.set()
            self._thread.join()
        for pipes in self._pipes:
            for reader, writer in pipes:
                os.close(reader)
                if self._thread is None:        # never started: forking failed
                    os.close(writer)

    def _pump(self) -> None:
        selector = selectors.DefaultSelector()
        pending: dict[int, bytes] = {}
        for pid, pipes in enumerate(self._pipes):
            for which, (reader, _) in enumerate(pipes):
                selector.register(reader, selectors.EVENT_READ, (pid, which))
                pending[reader] = b""
        try:
            while selector.get_map() and not self._stop.is_set():
                for key, _ in selector.select(0.1):
                    chunk = os.read(key.fd, 1 << 16)
                    pid, which = key.data
                    if not chunk:
                        selector.unregister(key.fd)
                        chunk = b"\n" if pending[key.fd] else b""
                    lines, _, pending[key.fd] = (pending[key.fd] + chunk).rpartition(b"\n")
                    if lines:
                        self._write(pid, which, lines)
        finally:
            selector.close()

    def _write(self, pid: int, which: int, lines: bytes) -> None:
        tag = self._tag.format(pid=pid)
        text = "".join(f"{tag}{line}\n" for line in lines.decode(errors="replace").split("\n"))
        stream = self._streams[which]
        try:
            stream.write(text)
            stream.flush()
        except (OSError, ValueError, AttributeError):      # a stream closed, or None
            pass


def _text_stream(fd: int) -> TextIO:
    return io.TextIOWrapper(io.FileIO(fd, "w", closefd=False), encoding="utf-8", errors="backslashreplace",
                            line_buffering=True)
