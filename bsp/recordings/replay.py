"""Replaying one rank of a recorded run: `bsp.replay(path, rank=r)`.

A rank's whole world is what arrived at each of its syncs.  The replay runs
rank r's program alone, in the calling process, on a `ReplayTransport`: an
exchange returns what the recorded one returned (the sync records of all
ranks and the blocks that arrived), and the engine, the World and the data
objects above it are the real ones, so the program takes the code path it
took in the run: messages, puts, gets, collectives, even the RemoteError or
SyncMismatchError that other ranks caused, all come out the same.

Each exchange is checked against the record: this rank's sync record (the
call that ended the superstep, its root, the data objects created so far)
and a digest of what it sent.  The first difference raises ReplayDivergence
naming the superstep and the call site.

The program is the recorded one (dill, by value for functions of
`__main__`), unless `program` names another: an edited version, with a
`breakpoint()` or a fix, replays as long as it syncs and sends as recorded.
"""

from __future__ import annotations

import linecache
import os
import sys
from typing import Any, Callable, Iterator

import numpy as np

from bsp.base.callsite import user_call_site
from bsp.checkpoint.world_checkpoints import CHECKPOINTING
from bsp.core.engine import DEFAULT_QUEUE_CHANNEL, FIRST_OBJECT_CHANNEL, Engine
from bsp.core.buffers import aligned_empty
from bsp.errors import BSPError, ReplayDivergence
from bsp.launch.rank_runner import exit_site, rank_running
from bsp.core.sync_record import RECORD_SIZE, Flags, Kind, Status, SyncRecord, unpack_all
from bsp.recordings.record_file import END, ERROR, Entry, RecordFile
from bsp.recordings.recording import digest_sent
from bsp.core.transport import Incoming, Outgoing, Transport
from bsp.world import World


def replay(path: str | os.PathLike[str], rank: int, *, program: Callable[..., Any] | None = None,
           args: tuple[Any, ...] | None = None, kwargs: dict[str, Any] | None = None, debug: bool = False,
           check_bytes: bool = True) -> Any:
    """Rerun rank `rank` of the run recorded at `path` (bsp.run(...,
    record=path)) in this process, alone, and return what its program
    returns.  Its syncs deliver what the recorded ones delivered; the
    replay makes no communication and takes as many supersteps as the run,
    each costing the time to read its arrivals from the file.

    `program`, `args`, `kwargs`: run this program (with these arguments;
    default: the recorded ones) instead of the recorded one.  `debug`:
    start the program under pdb, stopped at its first line, and enter pdb's
    post-mortem if it raises.  `check_bytes=False`: compare only the number
    and sizes of the messages sent, not their bytes (for a process whose
    PYTHONHASHSEED differs from the run's, when the program sends sets of
    strings: `bsp replay` sets the run's seed itself).

    Raises what the program raised in the run, if it raised (RemoteError if
    another rank failed; SyncMismatchError, SyncTimeoutError likewise);
    ReplayDivergence when the program syncs, creates data objects or sends
    otherwise than recorded; ValueError for a rank the record does not
    hold; RecordFormatError (a ValueError) for a file that is no record,
    or a damaged one (naming the part; checked before the program runs);
    PermissionError for a record that another user owns or could have
    written; BSPError when the recorded program cannot be rebuilt here.
    A record holds pickles, which run code when loaded: replay only
    records you trust.
    """
    with RecordFile(os.fspath(path)) as record:
        manifest = record.manifest
        _check_rank(rank, manifest["nprocs"], path)
        record.verify(rank)     # damage is the record's error, before the program runs: never a divergence
        if program is None:
            program, recorded_args, recorded_kwargs = load_call(record)
            show_sources(manifest)
        elif args is None or kwargs is None:
            _, recorded_args, recorded_kwargs = load_call(record)
        args = recorded_args if args is None else tuple(args)
        kwargs = recorded_kwargs if kwargs is None else dict(kwargs)
        transport = ReplayTransport(record.entries(rank), rank, manifest, program, check_bytes)
        engine = Engine(transport)
        transport.engine = engine
        with rank_running(engine):
            value = _call(program, World(engine, CHECKPOINTING), args, kwargs, debug)
            engine.finish(site=exit_site(program))
        transport.check_finished()
        return value


def _check_rank(rank: Any, nprocs: int, path: Any) -> None:
    if isinstance(rank, bool) or not isinstance(rank, int):
        raise TypeError(f"rank must be an int, not {type(rank).__name__!r}")
    if not 0 <= rank < nprocs:
        raise ValueError(f"rank={rank}, but the run recorded in {os.path.basename(os.fspath(path))} had ranks "
                         f"0..{nprocs - 1}")


def _call(program: Callable[..., Any], world: World, args: tuple[Any, ...], kwargs: dict[str, Any], debug: bool) -> Any:
    """Call the program; with `debug`, under pdb (as pdb.runcall does, but
    quitting pdb raises bdb.BdbQuit here rather than return None, which the
    replay would take for the program's return)."""
    if not debug:
        return program(world, *args, **kwargs)
    import bdb
    import pdb
    debugger = pdb.Pdb()
    debugger.reset()
    sys.settrace(debugger.trace_dispatch)
    try:
        return program(world, *args, **kwargs)
    except (bdb.BdbQuit, KeyboardInterrupt, SystemExit, ReplayDivergence):
        raise
    except BaseException as error:
        sys.settrace(None)
        print(f"pybsp: the replayed program raised {type(error).__name__}: {error}; pdb post-mortem "
              f"(q to quit)", file=sys.stderr)
        pdb.post_mortem(error.__traceback__)
        raise
    finally:
        debugger.quitting = True
        sys.settrace(None)


def load_call(record: RecordFile) -> tuple[Callable[..., Any], tuple[Any, ...], dict[str, Any]]:
    """The recorded (program, args, kwargs).  Functions of modules travel by
    name: when one cannot be imported, the directories of the recorded
    script and working directory are tried too.  Raises BSPError."""
    import dill
    manifest, call = record.manifest, record.call()
    if call is None:
        raise BSPError(f"the record holds no program: {manifest['program_name']} could not be saved "
                       f"({manifest.get('call_error')}); pass program= to bsp.recordings.replay")
    try:
        return dill.loads(call)  # type: ignore[no-any-return]  # the (program, args, kwargs) saved
    except (ImportError, AttributeError):
        pass
    extra = [os.path.dirname(os.path.abspath(manifest["argv"][0])) if manifest["argv"] else "", manifest["cwd"]]
    sys.path[:0] = [folder for folder in extra if folder and os.path.isdir(folder)]
    try:
        return dill.loads(call)  # type: ignore[no-any-return]
    except (ImportError, AttributeError) as error:
        raise BSPError(f"cannot rebuild the recorded program {manifest['program_name']} here: "
                       f"{type(error).__name__}: {error}.  Make its module importable (PYTHONPATH), "
                       f"or pass program= to bsp.recordings.replay") from None


def show_sources(manifest: dict[str, Any]) -> None:
    """Let tracebacks and pdb show the recorded source of the program's file
    (which may be missing here, or edited since)."""
    for filename, text in manifest.get("sources", {}).items():
        linecache.cache[filename] = (len(text), None, text.splitlines(True), filename)


class ReplayTransport(Transport):
    """A transport that delivers the recorded exchanges of one rank and
    checks that the program brings to each what it brought in the run."""

    def __init__(self, entries: Iterator[Entry], pid: int, manifest: dict[str, Any], program: Callable[..., Any],
                 check_bytes: bool = True):
        self.pid = pid
        self._check_bytes = check_bytes
        self.nprocs = manifest["nprocs"]
        self.engine: Engine | None = None
        self._entries = entries
        self._manifest = manifest
        self._program = program
        self._superstep = 0

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        return aligned_empty(nbytes).data

    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        mine = unpack_all(record, 1)[0]
        self._superstep = mine.superstep
        entry = next(self._entries, None)
        if entry is None or entry.tag == END:
            raise self._divergence(mine, f"{_called(mine)}", self._ended(entry))
        recorded = entry.records if entry.tag == ERROR else \
            entry.records[self.pid * RECORD_SIZE:(self.pid + 1) * RECORD_SIZE]
        if recorded != record:
            self._differs(mine, unpack_all(recorded, 1)[0])
        if entry.tag == ERROR and entry.error is not None:
            raise entry.error
        if mine.status != Status.FAILED and mine.kind != Kind.DIAGNOSE:
            digest, sent = digest_sent(outgoing)        # (tracebacks and call sites may name other paths)
            if sent != entry.sent or (self._check_bytes and digest != entry.digest):
                self._sent_otherwise(mine, sent, entry.sent)
        return entry.records, entry.incoming

    def check_finished(self) -> None:
        """The program has returned: raise ReplayDivergence if the record
        goes on."""
        entry = next(self._entries, None)
        if entry is not None and entry.tag != END:
            raise ReplayDivergence(self.pid, self._superstep, exit_site(self._program),
                                   "returned from the program", "went on to another exchange")

    def _ended(self, entry: Entry | None) -> str:
        if entry is not None:
            return "had returned from the program"
        return f"recorded nothing more of this rank (the recording stopped: {self._manifest['ending']})"

    def _site(self, mine: SyncRecord) -> str:
        if mine.kind == Kind.EXIT and mine.status == Status.RETURNED:
            return exit_site(self._program)
        return user_call_site()

    def _divergence(self, mine: SyncRecord, done: str, recorded: str) -> ReplayDivergence:
        return ReplayDivergence(self.pid, mine.superstep, self._site(mine), done, recorded)

    def _differs(self, mine: SyncRecord, recorded: SyncRecord) -> None:
        if (mine.kind, mine.arg, mine.status) != (recorded.kind, recorded.arg, recorded.status):
            raise self._divergence(mine, _called(mine), _called(recorded))
        if (mine.objects, mine.signature) != (recorded.objects, recorded.signature):
            made = ", ".join(self.engine.created) if self.engine is not None else "?"
            raise self._divergence(mine, f"had created {mine.objects} data objects ({made or 'none'})",
                                   f"had created {recorded.objects}"
                                   + (" (others, of the same number)" if mine.objects == recorded.objects else ""))
        asked = {True: "asked for data with a get", False: "made no get"}
        raise self._divergence(mine, asked[bool(mine.flags & Flags.GETS)], asked[bool(recorded.flags & Flags.GETS)])

    def _sent_otherwise(self, mine: SyncRecord, sent: list[Any], recorded: list[Any]) -> None:
        for i in range(max(len(sent), len(recorded))):
            done = sent[i] if i < len(sent) else None
            then = recorded[i] if i < len(recorded) else None
            if done != then:
                raise self._divergence(mine, _sent(done, self.engine), _sent(then, self.engine))
        seed = self._manifest.get("hash_seed")
        hint = ""
        if seed is None or seed != os.environ.get("PYTHONHASHSEED"):
            hint = (f" (if they hold sets of strings, their order depends on the hash seed: the run had "
                    f"PYTHONHASHSEED={seed or 'random'}, this process has "
                    f"{os.environ.get('PYTHONHASHSEED') or 'random'}; replay with check_bytes=False, or "
                    f"with `bsp replay`, which uses the run's seed)")
        raise self._divergence(mine, "sent messages of the recorded number and sizes, but other bytes" + hint,
                               "sent other bytes")


def _called(record: SyncRecord) -> str:
    if record.status == Status.RETURNED:
        return "returned from the program"
    if record.status == Status.FAILED:
        return "raised an exception"
    return f"called {record.describe()}"


def _sent(section: tuple[Any, ...] | None, engine: Engine | None) -> str:
    if section is None:
        return "sent nothing more"
    dest, channel, count, nbytes = section
    return f"sent {count} message(s), {nbytes} bytes, to rank {dest} on {_channel(channel, engine)}"


def _channel(channel: int, engine: Engine | None) -> str:
    if channel < DEFAULT_QUEUE_CHANNEL:
        return "the collectives' channel"
    if channel == DEFAULT_QUEUE_CHANNEL:
        return "world.send's channel"
    number = channel - FIRST_OBJECT_CHANNEL
    created = engine.created if engine is not None else []
    kind = f" ({created[number]})" if number < len(created) else ""
    return f"the channel of data object {number}{kind}"


def identical(a: Any, b: Any) -> bool:
    """Whether two results are the same: of the same types, with equal
    values (numpy arrays: same dtype, shape and elements, NaN equal to NaN),
    containers element by element."""
    if type(a) is not type(b):
        return False
    if isinstance(a, np.ndarray):
        return a.dtype == b.dtype and a.shape == b.shape and \
            bool(np.array_equal(a, b, equal_nan=a.dtype.kind in "fc"))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(identical(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(identical(a[key], b[key]) for key in a)
    try:
        return bool(a == b) or (a != a and b != b)          # NaN equals NaN here
    except Exception:
        return False
