"""The file of a recorded run (`bsp.run(..., record=path)`), version 3
(version 3: a batch of small messages in the blocks is marked by its first
byte, `bsp.core.wire.BATCH_MARK`, where version 2 pickled a list subclass;
a batch of floats alone, by `bsp.core.wire.FLOATS_MARK`).

One file holds the whole run, so that a record made on a cluster can be
copied to a laptop and replayed there:

    MAGIC, version (u32)
    the call       dill of (program, arguments): by value for functions of
                   __main__
    the results    each returning rank's result, pickled
    rank parts     each rank's entries, one after the other
    index          JSON: the manifest (plain data: the source of the
                   program's file, nprocs, the backend, the hash seed, how
                   the run ended, the pybsp that wrote it) and where each of
                   the above lies, with its CRC-32
    footer         u64 offset and u64 length of the index, u32 its CRC-32,
                   then MAGIC

A rank part is a sequence of entries, one per transport exchange the rank
made, each `u64 length` + `u32 CRC-32 of the payload` + payload, so that a
part cut short (the rank was killed while writing) ends at its last whole
entry, and a damaged one is found:

    EXCHANGE   what the exchange returned to the rank: the sync records of
               all ranks and, for each source that sent the rank something, its
               pid and the block of bytes that arrived,
               as it arrived (each block at an ALIGN-aligned offset of the
               payload, so a replay hands numpy aligned memory, as the
               transports do); and what the rank sent: a digest of it
               (blake2b) and, per destination and channel, the message count
               and bytes, for divergence messages (all of it plain numbers);
    ERROR      the transport raised (a sync timeout): the error, pickled;
    END        the rank's recording closed normally.

Every byte of the file is under a checksum: a damaged record is a
RecordFormatError naming the part that is damaged, never a replay of
other data.  Opening a record and describing it (the manifest, each rank's
entries) unpickles nothing; replaying a rank does (the call, an ERROR
entry, the result): replay only records you trust.  A record that another
user owns or could have replaced is refused when it is opened
(bsp.base.trusted_files), before anything in it is read.
"""

from __future__ import annotations

import json
import os
import pickle
import struct
import warnings
import zlib
from typing import Any, BinaryIO, Callable, Iterator, Mapping, NamedTuple, Sequence

from bsp.base import atomic_files
from bsp.base.trusted_files import check_trusted
from bsp.core.align import ALIGN, padding
from bsp.core.buffers import aligned_empty
from bsp.core.transport import RECORD_SIZE
from bsp.version import __version__

MAGIC = b"BSPREC\r\n"
VERSION = 3
EXCHANGE, ERROR, END = 1, 2, 3

_VERSION = struct.Struct("<I")
_FOOTER = struct.Struct("<QQI")         # index offset, length, CRC-32
_ENTRY = struct.Struct("<QI")           # payload length, its CRC-32
_ENTRY_HEAD = struct.Struct("<II")      # tag, metadata length
_EXCHANGE_META = struct.Struct("<IIII")     # bytes of the records, of the digest; sections sent; 2 x blocks
_ZEROS = bytes(ALIGN)
_READ = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0)
_TRUST_ADVICE = "replay only records you trust; copy it to a directory of your own if you trust it"


class RecordFormatError(ValueError):
    """The file is not a pybsp record, one of a version this pybsp cannot
    read, or a damaged one: the message names the part that is damaged."""


# -- writing one rank's part ----------------------------------------------------

class PartWriter:
    """Appends one rank's entries to its part file, each written through to
    the file when it is complete, so that a rank that dies keeps what it
    recorded before.  Raises OSError as the system does (a full disk)."""

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        self._file = open(fd, "wb", buffering=1 << 16)

    def exchange(self, records: bytes, digest: bytes, sent: list[tuple[int, int, int, int]],
                 incoming: Mapping[int, Sequence[memoryview]]) -> None:
        """An exchange: the records and blocks it returned (by source), and
        what was sent."""
        sources = sorted(incoming)
        lengths = [sum(piece.nbytes for piece in incoming[source]) for source in sources]
        meta = _pack_exchange(bytes(records), digest, sent, [n for pair in zip(sources, lengths) for n in pair])
        front = _ENTRY_HEAD.pack(EXCHANGE, len(meta)) + meta
        chunks: list[bytes | memoryview] = [front, _ZEROS[:padding(len(front))]]
        for source, length in zip(sources, lengths):
            chunks += [*incoming[source], _ZEROS[:padding(length)]]
        self._entry(chunks)

    def error(self, record: bytes, error: BaseException) -> None:
        """The exchange to which this rank brought `record` raised `error`."""
        meta = pickle.dumps((bytes(record), error), 5)
        self._entry([_ENTRY_HEAD.pack(ERROR, len(meta)), meta])

    def close(self) -> None:
        """The rank's recording is complete."""
        if not self._file.closed:
            try:
                self._entry([_ENTRY_HEAD.pack(END, 0)])
            finally:
                self.abandon()

    def abandon(self) -> None:
        """Stop writing (the file stays as far as it was written)."""
        try:
            self._file.close()
        except OSError:         # what the buffer held is lost: the part ends at its last whole entry
            pass

    def _entry(self, chunks: Sequence[bytes | memoryview]) -> None:
        crc = 0
        for chunk in chunks:
            crc = zlib.crc32(chunk, crc)
        write = self._file.write
        write(_ENTRY.pack(sum(len(memoryview(chunk).cast("B")) for chunk in chunks), crc))
        for chunk in chunks:
            write(chunk)
        self._file.flush()


def _pack_exchange(records: bytes, digest: bytes, sent: list[tuple[int, int, int, int]], blocks: list[int]) -> bytes:
    """`blocks`: (source, bytes) of each block that arrived, flattened."""
    numbers = [value for section in sent for value in section] + blocks
    return (_EXCHANGE_META.pack(len(records), len(digest), len(sent), len(blocks)) + records + digest
            + struct.pack(f"<{len(numbers)}q", *numbers))


def _unpack_exchange(meta: memoryview) -> tuple[bytes, bytes, list[tuple[int, ...]], list[int]]:
    nrecords, ndigest, nsent, nlengths = _EXCHANGE_META.unpack_from(meta)
    offset = _EXCHANGE_META.size
    records, digest = bytes(meta[offset:offset + nrecords]), bytes(meta[offset + nrecords:offset + nrecords + ndigest])
    numbers = struct.unpack_from(f"<{4 * nsent + nlengths}q", meta, offset + nrecords + ndigest)
    sent = [tuple(numbers[4 * i:4 * i + 4]) for i in range(nsent)]
    return records, digest, sent, list(numbers[4 * nsent:])


# -- the whole file -------------------------------------------------------------

def assemble(path: str, manifest: dict[str, Any], call: bytes | None, results: dict[int, bytes],
             parts: dict[int, str]) -> int:
    """Write the record file at `path` atomically from the manifest (plain
    data, for JSON), the pickled call and results, and the rank parts (pid
    -> part file; a missing file is an empty part; a part's last entry
    left incomplete by a killed rank is left out).  Returns the bytes
    written.  Raises OSError as the system does."""
    def write(out: BinaryIO) -> None:
        out.write(MAGIC + _VERSION.pack(VERSION))
        index: dict[str, Any] = {"manifest": manifest, "call": None if call is None else _blob(out, call),
                                 "results": {str(pid): _blob(out, blob) for pid, blob in sorted(results.items())},
                                 "parts": {}}
        for pid, part in sorted(parts.items()):
            start = out.tell()
            entries = _copy_whole_entries(part, out)
            index["parts"][str(pid)] = [start, out.tell() - start, entries]
        start = out.tell()
        blob = json.dumps(index, separators=(",", ":")).encode()
        out.write(blob + _FOOTER.pack(start, len(blob), zlib.crc32(blob)) + MAGIC)
    return write_atomically(path, write)


def write_atomically(path: str, write: Callable[[BinaryIO], object]) -> int:
    """Call `write(file)` on a new temporary file in the directory of `path`,
    then put it in place of `path` (see bsp.base.atomic_files): readers see the old file
    or the new one, never part of one, and a symlink at `path` is replaced,
    not written through.  The file is 0600.  Returns its size."""
    return atomic_files.write_atomically(path, write, mode=0o600)


def _blob(out: BinaryIO, data: bytes) -> list[int]:
    start = out.tell()
    out.write(data)
    return [start, len(data), zlib.crc32(data)]


def _copy_whole_entries(part: str, out: BinaryIO) -> int:
    """Copy the whole entries of the part file `part` to `out`; return
    how many there are."""
    try:
        source = open(part, "rb")
    except FileNotFoundError:
        return 0
    with source:
        spans = _whole_entries(source)
        _copy(source, out, spans[-1][0] + spans[-1][1] if spans else 0)
    return len(spans)


def _whole_entries(source: BinaryIO) -> list[tuple[int, int]]:
    """(offset of its payload, its size) of each whole entry of a part file."""
    size = os.fstat(source.fileno()).st_size
    position, spans = 0, []
    while position + _ENTRY.size <= size:
        source.seek(position)
        length, _ = _ENTRY.unpack(source.read(_ENTRY.size))
        if position + _ENTRY.size + length > size:
            break
        spans.append((position + _ENTRY.size, length))
        position += _ENTRY.size + length
    return spans


def part_complete(part: str) -> bool:
    """Whether the part file `part` ends with the END of its recording."""
    try:
        with open(part, "rb") as source:
            spans = _whole_entries(source)
            if not spans:
                return False
            source.seek(spans[-1][0])
            return bool(_ENTRY_HEAD.unpack(source.read(_ENTRY_HEAD.size))[0] == END)
    except (OSError, struct.error):
        return False


def _copy(source: BinaryIO, out: BinaryIO, size: int) -> None:
    """Append the first `size` bytes of `source` to `out`: in the kernel
    where it can (copy_file_range), else through this process."""
    out.flush()
    done = 0
    try:
        while done < size:
            copied = os.copy_file_range(source.fileno(), out.fileno(), size - done, done)
            if copied == 0:
                break
            done += copied
    except (AttributeError, OSError):       # no copy_file_range here, or not across these filesystems
        pass
    source.seek(done)
    out.seek(0, os.SEEK_END)
    while done < size and (chunk := source.read(min(1 << 20, size - done))):
        out.write(chunk)
        done += len(chunk)


class Entry(NamedTuple):
    """One recorded exchange of one rank."""

    tag: int
    records: bytes = b""        # of all ranks; for ERROR, this rank's own
    digest: bytes = b""
    sent: list[Any] = []
    incoming: dict[int, list[memoryview]] = {}      # by source, those that sent: [a memoryview of its block]
    error: BaseException | None = None


class RecordFile:
    """A record opened for reading: its manifest (plain data), and each
    rank's entries.  Opening it checks that no other user could have
    written it (PermissionError otherwise), then reads its index, checked;
    nothing is unpickled until a replay asks for the call, a result or an
    ERROR entry.  Warns (UserWarning) when another pybsp version wrote it."""

    def __init__(self, path: str):
        self.path = path
        fd = os.open(path, _READ)
        try:
            check_trusted(fd, os.path.abspath(path), PermissionError, _TRUST_ADVICE)
        except BaseException:
            os.close(fd)
            raise
        self._file = os.fdopen(fd, "rb")
        try:
            self._index = self._read_index()
            self.manifest: dict[str, Any] = self._index["manifest"]
        except BaseException:
            self._file.close()
            raise
        written_by = self.manifest.get("pybsp")
        if written_by != __version__:
            warnings.warn(f"{path} was recorded by pybsp {written_by}; this is pybsp {__version__}: "
                          f"a replay may differ from the run", UserWarning, stacklevel=2)

    def __enter__(self) -> "RecordFile":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def close(self) -> None:
        self._file.close()

    def _damaged(self, what: str) -> RecordFormatError:
        return RecordFormatError(f"{self.path} is damaged: {what}")

    def _read_index(self) -> dict[str, Any]:
        file = self._file
        head = file.read(len(MAGIC) + _VERSION.size)
        if head[:len(MAGIC)] != MAGIC:
            raise RecordFormatError(f"{self.path} is not a pybsp record (it does not start with {MAGIC!r})")
        (version,) = _VERSION.unpack_from(head, len(MAGIC))
        if version != VERSION:
            raise RecordFormatError(f"{self.path} is a pybsp record of format version {version}; "
                                    f"this pybsp reads version {VERSION}")
        size = os.fstat(file.fileno()).st_size
        if size < len(head) + _FOOTER.size + len(MAGIC):
            raise RecordFormatError(f"{self.path} is cut short: its index is missing")
        file.seek(size - _FOOTER.size - len(MAGIC))
        tail = file.read()
        if tail[_FOOTER.size:] != MAGIC:
            raise RecordFormatError(f"{self.path} is cut short: its index is missing")
        start, length, crc = _FOOTER.unpack_from(tail)
        if start + length > size - len(tail):
            raise self._damaged("its footer points outside the file")
        file.seek(start)
        blob = file.read(length)
        if zlib.crc32(blob) != crc:
            raise self._damaged("its index does not match its checksum")
        try:
            index = json.loads(blob)
            _check_index(index, start)
        except (ValueError, TypeError, KeyError) as error:
            raise self._damaged(f"its index is not the one pybsp writes ({error})") from None
        return index  # type: ignore[no-any-return]  # checked by _check_index

    def _read_blob(self, place: list[int], what: str) -> bytes:
        start, length, crc = place
        self._file.seek(start)
        data = self._file.read(length)
        if len(data) != length or zlib.crc32(data) != crc:
            raise self._damaged(f"{what} does not match its checksum")
        return data

    def call(self) -> bytes | None:
        """The dill of the recorded (program, args, kwargs), checked; None
        when the program could not be saved (see manifest['call_error'])."""
        place = self._index["call"]
        return None if place is None else self._read_blob(place, "the recorded program and arguments")

    def result(self, pid: int) -> Any:
        """What rank `pid`'s program returned in the run (unpickled: a
        record is trusted code).  Raises LookupError if it did not return
        (it failed, or the run ended before)."""
        place = self._index["results"].get(str(pid))
        if place is None:
            raise LookupError(f"rank {pid} did not return in the recorded run ({self.manifest['ending']})")
        return pickle.loads(self._read_blob(place, f"rank {pid}'s result")).load()

    def result_sizes(self) -> dict[int, int]:
        """The bytes of each returning rank's pickled result."""
        return {int(pid): place[1] for pid, place in self._index["results"].items()}

    def ranks(self) -> list[int]:
        """The ranks whose parts the record holds (empty parts included)."""
        return sorted(map(int, self._index["parts"]))

    def entries(self, pid: int) -> Iterator[Entry]:
        """Rank `pid`'s entries in order, each checked against its checksum
        (RecordFormatError naming the part and entry where one does not
        match)."""
        for number, (position, size, crc) in enumerate(self._spans(pid)):
            yield self._entry(pid, number, position, size, crc)

    def verify(self, pid: int) -> None:
        """Check what a replay of rank `pid` reads: every entry of its part
        (see entries) and its result; RecordFormatError naming the part
        that does not match its checksum."""
        for _ in self.entries(pid):
            pass
        place = self._index["results"].get(str(pid))
        if place is not None:
            self._read_blob(place, f"rank {pid}'s result")

    def _entry(self, pid: int, number: int, position: int, size: int, crc: int) -> Entry:
        self._file.seek(position)
        payload = aligned_empty(size).data
        if self._file.readinto(payload) != size or zlib.crc32(payload) != crc:
            raise self._damaged(f"rank {pid}'s part, entry {number}, does not match its checksum")
        try:
            return _parse(payload)
        except (ValueError, TypeError, struct.error, IndexError) as error:
            raise self._damaged(f"rank {pid}'s part, entry {number}, is not one pybsp writes ({error})") from None

    def tags(self, pid: int) -> list[int]:
        """The kinds of rank `pid`'s entries (EXCHANGE, ERROR, END), read
        without their contents."""
        tags = []
        for position, _, _ in self._spans(pid):
            self._file.seek(position)
            tags.append(_ENTRY_HEAD.unpack(self._file.read(_ENTRY_HEAD.size))[0])
        return tags

    def _spans(self, pid: int) -> Iterator[tuple[int, int, int]]:
        """(offset, size, CRC-32) of the payload of each entry of rank
        `pid`; RecordFormatError unless they fill the part exactly."""
        start, length, expected = self._index["parts"][str(pid)]
        position, end, count = start, start + length, 0
        while position < end:
            self._file.seek(position)
            head = self._file.read(_ENTRY.size)
            size, crc = _ENTRY.unpack(head) if len(head) == _ENTRY.size else (end, 0)
            position += _ENTRY.size
            if position + size > end or size < _ENTRY_HEAD.size or count >= expected:
                break
            yield position, size, crc
            position += size
            count += 1
        if position != end or count != expected:
            raise self._damaged(f"rank {pid}'s part does not hold the {expected} entries its index lists")


def _check_index(index: Any, end: int) -> None:
    """Raise (TypeError, ValueError, KeyError) unless `index` has the shape
    pybsp writes, with every place inside the first `end` bytes."""
    manifest = index["manifest"]
    if not isinstance(manifest, dict) or not isinstance(manifest["nprocs"], int):
        raise TypeError("no manifest")
    places = [index["call"]] if index["call"] is not None else []
    places += list(index["results"].values())
    for place in places + [part[:2] + [0] for part in index["parts"].values()]:
        start, length, _ = place
        if not all(isinstance(value, int) and value >= 0 for value in place) or start + length > end:
            raise ValueError("a part lies outside the file")
    if sorted(map(int, index["parts"])) != list(range(manifest["nprocs"])):
        raise ValueError("the parts are not those of the ranks")


def _parse(payload: memoryview) -> Entry:
    tag, meta_length = _ENTRY_HEAD.unpack_from(payload)
    meta = payload[_ENTRY_HEAD.size:_ENTRY_HEAD.size + meta_length]
    if tag == END:
        return Entry(END)
    if tag == ERROR:
        mine, error = pickle.loads(meta)
        return Entry(ERROR, records=mine, error=error)
    if tag != EXCHANGE:
        raise ValueError(f"an entry of kind {tag}")
    records, digest, sent, blocks = _unpack_exchange(meta)
    offset = _ENTRY_HEAD.size + meta_length
    offset += padding(offset)
    incoming: dict[int, list[memoryview]] = {}
    nprocs = len(records) // RECORD_SIZE
    if len(blocks) % 2:
        raise ValueError("an exchange lists a block's source without its length")
    for source, length in zip(blocks[::2], blocks[1::2]):
        if not 0 <= source < nprocs or source in incoming or length < 0:
            raise ValueError(f"a block from rank {source}, of {length} bytes, in a run of {nprocs} ranks")
        if offset + length > payload.nbytes:
            raise ValueError("a block runs past its entry")
        incoming[source] = [payload[offset:offset + length]]
        offset += length + padding(length)
    return Entry(EXCHANGE, records, digest, sent, incoming)
