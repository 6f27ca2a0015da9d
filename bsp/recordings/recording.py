"""Recording a run: `bsp.run(..., record=path)`, `bsp run --record F`.

Each rank records, at the transport, every exchange it makes: what arrived
(the sync records of all ranks and the raw blocks of bytes, which carry the
messages, puts, get requests and replies and collective contributions alike)
and a digest of what it sent.  That is all a rank's world is made of, so
`bsp.recordings.replay` can rerun one rank alone, feeding it the same arrivals through
the engine and data objects the program really uses.

Where the bytes go: each rank streams its part to a file of its own in a
temporary directory beside the record (under MPI, on a filesystem every node
sees: the record's own directory must be shared), and the launching process
joins the parts, with the manifest, into the one record file at the end of the
run, however the run ended, then removes the directory.  A part is written
through at every exchange, so a rank that is killed keeps what it recorded.

A `breakpoint()` in the program does nothing in the ranks of a recorded run
(they share the terminal, which pdb cannot); it stops the replay.

Cost per exchange on a rank: a blake2b pass over the bytes it sends, a
CRC-32 pass and a write of the bytes it receives (plus about 100 bytes of metadata), and a
write() system call; at the end, the launching process copies every part
once more into the record (copy_file_range: in the kernel).
"""

from __future__ import annotations

import errno
import hashlib
import os
import pickle
import platform
import shutil
import struct
import sys
import tempfile
import time
import traceback
from contextlib import contextmanager
from typing import Any, Callable, Iterator, NoReturn, Sequence

from bsp.errors import BSPError
from bsp.core.mailbox import unpack
from bsp.launch.outcome import Ending, Outcome
from bsp.core.sync_record import RECORD_SIZE
from bsp.recordings.record_file import VERSION, PartWriter, assemble, part_complete
from bsp.core.transport import Incoming, Outgoing, Transport
from bsp.version import __version__

_SECTION = struct.Struct("<qqqq")
_runs_recorded_here = 0         # runs recorded at the path BSP_RECORD names, by this process


def digest_sent(outgoing: Outgoing) -> tuple[bytes, list[tuple[int, int, int, int]]]:
    """A digest of what is sent (per destination and channel: the message
    count, the pickles and the bulk buffers, without the framing's padding),
    and the list of (dest, channel, messages, bytes)."""
    digest = hashlib.blake2b(digest_size=16)
    sent = []
    for dest, frames in sorted(outgoing.items()):
        if not frames:
            continue
        for channel, arrival in unpack(dest, [memoryview(frame).cast("B") for frame in frames]):
            nbytes = arrival.stream.nbytes + sum(buffer.nbytes for buffer in arrival.bulk)
            digest.update(_SECTION.pack(dest, channel, arrival.count, nbytes))
            digest.update(arrival.stream)
            for buffer in arrival.bulk:
                digest.update(buffer)
            sent.append((dest, channel, arrival.count, nbytes))
    return digest.digest(), sent


class RecordingTransport(Transport):
    """A transport that records every exchange of the one it wraps.

    A write that fails (a full disk) stops the recording, and fails this
    rank's program at its next exchange, before that exchange: the run then
    ends as when a rank raises, with a RemoteError that names the error
    (ENOSPC) and the part's path on every rank.  Raising at the exchange
    whose write failed would be too late: the others have taken its
    verdict, and may have left the run.  A write that fails at the last
    exchange leaves the part without its end, which the launching process
    reports (see `session`)."""

    def __init__(self, inner: Transport, writer: PartWriter):
        self.inner = inner
        self.pid = inner.pid
        self.nprocs = inner.nprocs
        self._writer: PartWriter | None = writer
        self._failure: BSPError | None = None       # raised at the next exchange

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        return self.inner.send_buffer(nbytes, exclusive)

    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        if self._failure is not None:
            failure, self._failure = self._failure, None
            raise failure
        writer = self._writer
        if writer is None:
            return self.inner.exchange(outgoing, record)
        digest, sent = digest_sent(outgoing)
        try:
            records, incoming = self.inner.exchange(outgoing, record)
        except BSPError as error:
            self._write(lambda: writer.error(record, error))
            self._failure = None        # the run ends with `error` already
            raise
        # the file holds every rank's record, also where the transport
        # answered with the one they all share (see bsp.core.transport)
        self._write(lambda: writer.exchange(records if len(records) > RECORD_SIZE else records * self.nprocs,
                                            digest, sent, incoming))
        return records, incoming

    def _write(self, write: Callable[[], None]) -> None:
        assert self._writer is not None
        try:
            write()
        except OSError as error:
            self._writer.abandon()
            self._failure = BSPError(cannot_write(f"rank {self.pid} could not write its part of the record",
                                                  self._writer.path, error))
            self._writer = None

    def close(self) -> None:
        if self._writer is not None:
            self._write(self._writer.close)
        if self._failure is not None:       # the last exchange's write failed: nobody else can say so
            print(f"pybsp: {self._failure}", file=sys.stderr, flush=True)


def cannot_write(failed: str, path: str, error: OSError) -> str:
    """`failed` (what could not be written) at `path`: why, and what to do."""
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    full = " (the disk is full)" if error.errno in (errno.ENOSPC, errno.EDQUOT) else ""
    return f"{failed} at {path}: {error.strerror or error} [{name}]{full}; free space there, or record elsewhere"


class Recorded:
    """A program on its way to the ranks with the directory where each
    records its part (see `bsp.launch.rank_runner.run_rank`, which unwraps it)."""

    def __init__(self, program: Callable[..., Any], parts: str):
        self.program = program
        self.parts = parts

    def start(self, transport: Transport) -> tuple[Callable[..., Any], Transport, Callable[[], None]]:
        """(program, transport, close) for this rank: the transport records;
        when the part cannot be made here, the program fails saying why."""
        path = part_path(self.parts, transport.pid)
        try:
            writer = PartWriter(path)
        except OSError as error:
            return _cannot_record(error, path), transport, lambda: None
        recording = RecordingTransport(transport, writer)
        hook, sys.breakpointhook = sys.breakpointhook, _skip_breakpoint

        def close() -> None:
            sys.breakpointhook = hook
            recording.close()
        return self.program, recording, close


def _skip_breakpoint(*args: Any, **kwargs: Any) -> None:
    """breakpoint() in the ranks of a recorded run: the replay stops there
    (where stdin is the terminal), the ranks go on (theirs is not)."""


def _cannot_record(error: OSError, path: str) -> Callable[..., Any]:
    def program(world: Any, *args: Any, **kwargs: Any) -> NoReturn:
        raise BSPError(f"rank {world.pid} cannot write its part of the record at {path}: {error}.  Under MPI, "
                       f"the record's directory must be on a filesystem that every node shares.")
    return program


def part_path(parts: str, pid: int) -> str:
    return os.path.join(parts, f"rank-{pid}.part")


def choose_path(record: Any, checkpoint: Any = None, source: str = "record") -> str | None:
    """The record file of this run: `record`, else BSP_RECORD (where the
    second run of a process writes STEM.2.SUFFIX, the third STEM.3.SUFFIX,
    and so on), else None.  Raises TypeError for a record that is not a
    path, ValueError for one in a directory that does not exist, and for a
    run that also checkpoints (`checkpoint`, else BSP_CHECKPOINT): its
    world.save and world.restore write and read files that a record does
    not hold, so its ranks could not be replayed."""
    global _runs_recorded_here
    if record is None:
        record = os.environ.get("BSP_RECORD") or None
        if record is None:
            return None
        _runs_recorded_here += 1
        if _runs_recorded_here > 1:
            stem, suffix = os.path.splitext(record)
            record = f"{stem}.{_runs_recorded_here}{suffix}"
    if not isinstance(record, (str, os.PathLike)):
        raise TypeError(f"{source} must be the path of a file to write, not {type(record).__name__!r}")
    path = os.path.abspath(os.fspath(record))
    if not os.path.isdir(os.path.dirname(path)):
        raise ValueError(f"{source} {os.fspath(record)!r}: the directory {os.path.dirname(path)!r} does not exist")
    if os.path.isdir(path):
        raise ValueError(f"{source} {os.fspath(record)!r} is a directory; name a file")
    if checkpoint is None:
        checkpoint = os.environ.get("BSP_CHECKPOINT") or None
    if checkpoint is not None and checkpoint is not False:
        raise ValueError(f"a run cannot be both recorded and checkpointed ({source} {os.fspath(record)!r}, "
                         f"checkpoint directory {os.fspath(checkpoint)!r}): world.save and world.restore "
                         f"write and read files that the record does not hold, so a replay could not repeat them")
    return path


class Session:
    """One run's recording, on the launching process: wraps the program
    for the ranks, and notes how each rank ended."""

    def __init__(self, parts: str | None):
        self.parts = parts
        self.results: dict[int, bytes] = {}     # pid -> the pickled result of a rank that returned

    def wrap(self, program: Callable[..., Any]) -> Any:
        """The program, or, when recording, a Recorded that run_rank unwraps."""
        return program if self.parts is None else Recorded(program, self.parts)

    def ended(self, outcomes: Sequence[Outcome]) -> None:
        """The ranks' outcomes: the results go into the record, so that a
        replay can be compared with the run."""
        if self.parts is not None:
            self.results = {outcome.pid: pickle.dumps(outcome.value, 5) for outcome in outcomes
                            if outcome.ending is Ending.RETURNED}


@contextmanager
def session(path: str | None, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
            backend: str) -> Iterator[Session]:
    """Around one run: yields the Session, and writes the record at `path`
    when the run ends, however it ends (then the run's own error, if any,
    goes on).  With `path` None, records nothing.  A run that ended well
    raises BSPError naming the path and the reason (ENOSPC) when the record
    cannot be written, or when a rank that returned could not write all of
    its part."""
    if path is None:
        yield Session(None)
        return
    parts = tempfile.mkdtemp(prefix=f".{os.path.basename(path)}.parts-", dir=os.path.dirname(path))
    recording = Session(parts)
    ending = None
    try:
        yield recording
    except BaseException as error:
        ending = f"{type(error).__name__}: {error}"
        raise
    finally:
        try:
            _write_record(path, recording, parts, program, args, kwargs, nprocs, backend, ending)
        except BSPError as error:
            if ending is None:
                raise
            print(f"pybsp: {error}", file=sys.stderr)
        finally:
            shutil.rmtree(parts, ignore_errors=True)


def _write_record(path: str, recording: Session, parts: str, program: Callable[..., Any], args: tuple[Any, ...],
                  kwargs: dict[str, Any], nprocs: int, backend: str, ending: str | None) -> None:
    manifest = make_manifest(program, args, kwargs, nprocs, backend, ending or "the run finished")
    call, manifest["call_error"] = _pickled_call(program, args, kwargs)
    files = {pid: part_path(parts, pid) for pid in range(nprocs)}
    try:
        assemble(path, manifest, call, recording.results, files)
    except OSError as error:
        raise BSPError(cannot_write("pybsp could not write the record", path, error)) from None
    unfinished = [pid for pid in sorted(recording.results) if not part_complete(files[pid])]
    if unfinished:
        raise BSPError(f"the record {path} is incomplete: the parts of ranks {unfinished} stop early, although "
                       f"they returned: they could not write them (see their messages above)")


def make_manifest(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int, backend: str,
                  ending: str) -> dict[str, Any]:
    """What a replay needs to know of the run besides the call and the
    ranks' parts, in plain data: the source of the program's file, and the
    run's facts."""
    code = getattr(program, "__code__", None)
    filename = code.co_filename if code is not None else None
    return {
        "format": VERSION, "pybsp": __version__, "python": platform.python_version(),
        "host": platform.node(), "created": time.time(), "nprocs": nprocs, "backend": backend,
        "hash_seed": os.environ.get("PYTHONHASHSEED"), "argv": list(sys.argv), "cwd": os.getcwd(),
        "program_name": f"{getattr(program, '__module__', '?')}.{getattr(program, '__qualname__', repr(program))}",
        "program_file": filename, "sources": _sources(filename), "ending": ending,
    }


def _pickled_call(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[bytes | None, str | None]:
    """dill of (program, args, kwargs): functions of __main__ by value (with
    the globals they use), those of importable modules by name."""
    import dill
    try:
        return dill.dumps((program, args, kwargs), protocol=5, recurse=True), None
    except Exception:
        return None, traceback.format_exc(limit=1).strip().splitlines()[-1]


_MOST_SOURCE_BYTES = 1 << 22


def _sources(filename: str | None) -> dict[str, str]:
    """The text of the program's file, for tracebacks and pdb where the
    record is replayed (the file may not be there)."""
    if not filename or not os.path.isfile(filename) or os.path.getsize(filename) > _MOST_SOURCE_BYTES:
        return {}
    try:
        with open(filename, encoding="utf-8") as file:
            return {filename: file.read()}
    except (OSError, UnicodeDecodeError):
        return {}
