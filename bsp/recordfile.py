"""The file of a recorded run (`bsp.run(..., record=path)`), version 1.

One file holds the whole run, so that a record made on a cluster can be
copied to a laptop and replayed there:

    MAGIC, version (u32)
    manifest       u64 length + a pickle of a dict: the program and its
                   arguments (dill, by value for functions of __main__), the
                   source of the program's file, nprocs, the backend, the
                   hash seed, how the run ended
    rank parts     each rank's entries, one after the other
    index          a pickle of {pid: (offset, length)}
    footer         u64 offset and u64 length of the index, then MAGIC

A rank part is a sequence of entries, one per transport exchange the rank
made, each `u64 length` + payload, so that a part cut short (the rank was
killed while writing) ends at its last whole entry:

    EXCHANGE   what the exchange returned to the rank: the sync records of
               all ranks and, per source, the block of bytes that arrived,
               as it arrived (each block at an ALIGN-aligned offset of the
               payload, so a replay hands numpy aligned memory, as the
               transports do); and what the rank sent: a digest of it
               (blake2b) and, per destination and channel, the message count
               and bytes, for divergence messages;
    ERROR      the transport raised (a sync timeout): the error, pickled;
    END        the rank's recording closed normally.

A record is pickles: open only records you trust, as you would run only
programs you trust.
"""

from __future__ import annotations

import os
import pickle
import struct
from typing import Any, BinaryIO, Callable, Iterator, NamedTuple, Sequence

from . import files
from .align import ALIGN, padding
from .buffers import aligned_empty

MAGIC = b"BSPREC\r\n"
VERSION = 1
EXCHANGE, ERROR, END = 1, 2, 3

_VERSION = struct.Struct("<I")
_LENGTH = struct.Struct("<Q")
_FOOTER = struct.Struct("<QQ")
_ENTRY_HEAD = struct.Struct("<II")      # tag, metadata length
_ZEROS = bytes(ALIGN)


class RecordFormatError(ValueError):
    """The file is not a pybsp record, or one of a version this pybsp cannot read."""


# -- writing one rank's part ----------------------------------------------------

class PartWriter:
    """Appends one rank's entries to its part file, each written through to
    the file when it is complete, so that a rank that dies keeps what it
    recorded before."""

    def __init__(self, path: str):
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._file = open(fd, "wb", buffering=1 << 16)

    def exchange(self, records: bytes, digest: bytes, sent: list[tuple[int, int, int, int]],
                 incoming: Sequence[Sequence[memoryview] | None]) -> None:
        """An exchange: the records and blocks it returned, and what was sent."""
        lengths = [-1 if pieces is None else sum(piece.nbytes for piece in pieces) for pieces in incoming]
        meta = pickle.dumps((bytes(records), digest, sent, lengths), 5)
        front = _ENTRY_HEAD.size + len(meta)
        body = [pieces for pieces in incoming if pieces is not None]
        total = front + padding(front) + sum(length + padding(length) for length in lengths if length > 0)
        write = self._file.write
        write(_LENGTH.pack(total))
        write(_ENTRY_HEAD.pack(EXCHANGE, len(meta)))
        write(meta)
        write(_ZEROS[:padding(front)])
        for pieces, length in zip(body, (length for length in lengths if length >= 0)):
            for piece in pieces:
                write(piece)
            write(_ZEROS[:padding(length)])
        self._file.flush()

    def error(self, record: bytes, error: BaseException) -> None:
        """The exchange to which this rank brought `record` raised `error`."""
        self._simple(ERROR, pickle.dumps((bytes(record), error), 5))

    def close(self) -> None:
        """The rank's recording is complete."""
        if not self._file.closed:
            self._simple(END, b"")
            self._file.close()

    def _simple(self, tag: int, meta: bytes) -> None:
        self._file.write(_LENGTH.pack(_ENTRY_HEAD.size + len(meta)))
        self._file.write(_ENTRY_HEAD.pack(tag, len(meta)))
        self._file.write(meta)
        self._file.flush()


# -- the whole file -------------------------------------------------------------

def assemble(path: str, manifest: dict[str, Any], parts: dict[int, str]) -> int:
    """Write the record file at `path` atomically from the manifest and the
    rank parts (pid -> part file; a missing file is an empty part).  Returns
    the bytes written."""
    def write(out: BinaryIO) -> None:
        out.write(MAGIC + _VERSION.pack(VERSION))
        blob = pickle.dumps(manifest, 5)
        out.write(_LENGTH.pack(len(blob)) + blob)
        index = {}
        for pid, part in sorted(parts.items()):
            start = out.tell()
            try:
                with open(part, "rb") as source:
                    _copy(source, out)
            except FileNotFoundError:
                pass
            index[pid] = (start, out.tell() - start)
        start = out.tell()
        blob = pickle.dumps(index, 5)
        out.write(blob + _FOOTER.pack(start, len(blob)) + MAGIC)
    return write_atomically(path, write)


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> int:
    """Call `write(file)` on a new temporary file in the directory of `path`,
    then put it in place of `path` (see bsp.files): readers see the old file
    or the new one, never part of one, and a symlink at `path` is replaced,
    not written through.  The file is 0600.  Returns its size."""
    return files.write_atomically(path, write, mode=0o600)


def _copy(source: BinaryIO, out: BinaryIO) -> None:
    out.flush()
    size = os.fstat(source.fileno()).st_size
    try:
        done = 0
        while done < size:
            copied = os.copy_file_range(source.fileno(), out.fileno(), size - done)
            if copied == 0:
                break
            done += copied
        out.seek(0, os.SEEK_END)
    except (AttributeError, OSError):       # no copy_file_range here, or not across these filesystems
        source.seek(0)
        out.seek(0, os.SEEK_END)
        while chunk := source.read(1 << 20):
            out.write(chunk)


class Entry(NamedTuple):
    """One recorded exchange of one rank."""

    tag: int
    records: bytes = b""        # of all ranks; for ERROR, this rank's own
    digest: bytes = b""
    sent: list[Any] = []
    incoming: list[Any] = []    # per source: None, or [a memoryview of its block]
    error: BaseException | None = None


class RecordFile:
    """A record opened for reading: its manifest, and each rank's entries."""

    def __init__(self, path: str):
        self.path = path
        self._file = open(path, "rb")
        try:
            self.manifest, self._index = self._read_header()
        except BaseException:
            self._file.close()
            raise

    def __enter__(self) -> "RecordFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _read_header(self) -> tuple[dict[str, Any], dict[int, tuple[int, int]]]:
        file = self._file
        head = file.read(len(MAGIC) + _VERSION.size)
        if head[:len(MAGIC)] != MAGIC:
            raise RecordFormatError(f"{self.path} is not a pybsp record (it does not start with {MAGIC!r})")
        (version,) = _VERSION.unpack_from(head, len(MAGIC))
        if version != VERSION:
            raise RecordFormatError(f"{self.path} is a pybsp record of format version {version}; "
                                    f"this pybsp reads version {VERSION}")
        (length,) = _LENGTH.unpack(file.read(_LENGTH.size))
        manifest = pickle.loads(file.read(length))
        file.seek(-(_FOOTER.size + len(MAGIC)), os.SEEK_END)
        tail = file.read()
        if tail[_FOOTER.size:] != MAGIC:
            raise RecordFormatError(f"{self.path} is cut short: its index is missing")
        start, length = _FOOTER.unpack_from(tail)
        file.seek(start)
        return manifest, pickle.loads(file.read(length))

    def result(self, pid: int) -> Any:
        """What rank `pid`'s program returned in the run.  Raises LookupError
        if it did not return (it failed, or the run ended before)."""
        blob = self.manifest.get("results", {}).get(pid)
        if blob is None:
            raise LookupError(f"rank {pid} did not return in the recorded run ({self.manifest['ending']})")
        return pickle.loads(blob).load()

    def ranks(self) -> list[int]:
        """The ranks whose parts the record holds (empty parts included)."""
        return sorted(self._index)

    def entries(self, pid: int) -> Iterator[Entry]:
        """Rank `pid`'s entries in order; a part cut short ends at its last
        whole entry."""
        for position, size in self._spans(pid):
            self._file.seek(position)
            payload = aligned_empty(size).data
            self._file.readinto(payload)
            yield _parse(payload)

    def tags(self, pid: int) -> list[int]:
        """The kinds of rank `pid`'s entries (EXCHANGE, ERROR, END), read
        without their contents."""
        tags = []
        for position, _ in self._spans(pid):
            self._file.seek(position)
            tags.append(_ENTRY_HEAD.unpack(self._file.read(_ENTRY_HEAD.size))[0])
        return tags

    def _spans(self, pid: int) -> Iterator[tuple[int, int]]:
        """(offset, size) of the payload of each whole entry of rank `pid`."""
        start, length = self._index[pid]
        position, end = start, start + length
        while position + _LENGTH.size <= end:
            self._file.seek(position)
            (size,) = _LENGTH.unpack(self._file.read(_LENGTH.size))
            position += _LENGTH.size
            if position + size > end:
                return
            yield position, size
            position += size


def _parse(payload: memoryview) -> Entry:
    tag, meta_length = _ENTRY_HEAD.unpack_from(payload)
    meta = payload[_ENTRY_HEAD.size:_ENTRY_HEAD.size + meta_length]
    if tag == END:
        return Entry(END)
    if tag == ERROR:
        mine, error = pickle.loads(meta)
        return Entry(ERROR, records=mine, error=error)
    records, digest, sent, lengths = pickle.loads(meta)
    offset = _ENTRY_HEAD.size + meta_length
    offset += padding(offset)
    incoming: list[Any] = []
    for length in lengths:
        if length < 0:
            incoming.append(None)
            continue
        incoming.append([payload[offset:offset + length]])
        offset += length + padding(length)
    return Entry(EXCHANGE, records, digest, sent, incoming)
