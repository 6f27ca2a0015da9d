"""Checkpoint and restart at superstep boundaries: `bsp.run(...,
checkpoint=DIR)`, `world.save(**state)` and `world.restore()`.

A superstep boundary is a consistent cut of a BSP run: nothing is in flight.
`save` writes, on every rank at once, what the program names, and the run
can later start again from there, on the same number of ranks or, for what
allows it, on another.

The directory (created 0700 if missing; every file in it 0600):

    LATEST                  the committed checkpoint: JSON {format, program,
                            checkpoint, manifest_sha256}, replaced atomically
    ck-<run>-<n>/           one checkpoint: the n-th save of run <run>
        manifest.json       what every rank wrote (written by rank 0, last)
        r<pid>.values       rank pid's values (bsp.wire blocks, CRC-32 each)
        r<pid>.a<k>.npy     rank pid's block of the k-th DistArray (.npy,
                            CRC-32 per chunk), r<pid>.a<k>.i<axis>.npy its
                            global indices along an axis when not a range

A save commits in this order: every rank writes its files and syncs them
to disk; the save's superstep confirms that every rank has done so; rank 0
then writes the manifest, and replaces LATEST by one naming the new
checkpoint (a rename: atomic).  A crash at any point before that rename
(SIGKILL of any rank, or of the launching process) leaves LATEST naming the
previous checkpoint, whole; after it, the new one.  Rank 0 then removes the
older checkpoints and anything a crashed save left behind.

Under MPI every rank must see the directory at the same path: a shared
filesystem (NFS, Lustre, GPFS) for a job that spans nodes.
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import hashlib
import json
import os
import re
import secrets
import zlib
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from . import checkpoint_files as files
from .callsite import user_call_site
from .engine import SYSTEM_CHANNEL
from .errors import CheckpointError
from .files import temporary_names
from .record import Kind

if TYPE_CHECKING:
    from .world import World

FORMAT = 1
LATEST = "LATEST"
MANIFEST = "manifest.json"
# LATEST, a LATEST that rank 0 died writing, and the checkpoints
_OURS = re.compile(rf"^({LATEST}|{temporary_names(LATEST)}|ck-[0-9a-f]+-\d+)$")


# -- in the launching process -------------------------------------------------

def program_identity(program: Callable[..., Any]) -> str:
    """'file.py:qualname' of the program (of what a functools.partial
    wraps): a checkpoint directory belongs to one program."""
    while isinstance(program, functools.partial):
        program = program.func
    code = getattr(program, "__code__", None)
    name = getattr(program, "__qualname__", None) or type(program).__qualname__
    where = os.path.basename(code.co_filename) if code is not None else getattr(program, "__module__", "?")
    return f"{where}:{name}"


def checkpointing(program: Callable[..., Any], directory: Any) -> ContextManager[Callable[..., Any]]:
    """A context that gives `program`, made to save into and restore from
    `directory` (bsp.run's checkpoint option; None: BSP_CHECKPOINT, if set;
    False or neither: `program` as it is), and holds the directory for this
    run meanwhile.  Checks the directory first, creating it if missing;
    raises TypeError for a directory that is not a path, CheckpointError
    for one that cannot be used (see `prepare`) or that another run holds."""
    if directory is None:
        directory = os.environ.get("BSP_CHECKPOINT") or None
    if directory is None or directory is False:
        return contextlib.nullcontext(program)
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be the path of a directory, not {type(directory).__name__!r}")
    return Checkpointed(program, directory)


class Checkpointed:
    """A program with its checkpoint directory.  It travels to every rank
    (pickled, under MPI) and there gives the World its checkpoints.  It
    looks like the program to the profile and the exit site."""

    def __init__(self, program: Callable[..., Any], directory: str | os.PathLike[str]):
        self.program = self.__wrapped__ = program
        self.__qualname__ = getattr(program, "__qualname__", type(program).__qualname__)
        self.__name__ = getattr(program, "__name__", self.__qualname__)
        self.__module__ = getattr(program, "__module__", type(program).__module__)
        self.identity = program_identity(program)
        self.directory = prepare(directory, self.identity)
        self.run = secrets.token_hex(4)         # names this run's checkpoints apart from earlier runs'

    @property
    def __code__(self) -> Any:
        return getattr(self.program, "__code__", None)

    def __getstate__(self) -> dict[str, Any]:
        return {key: value for key, value in self.__dict__.items() if key != "_lock"}

    def __enter__(self) -> "Checkpointed":
        """Hold the directory (an flock, where the filesystem has them) in
        the launching process for the run: two runs saving into one
        directory would remove each other's checkpoints."""
        self._lock = files.open_directory(self.directory)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise CheckpointError(f"checkpoint directory {self.directory!r} is in use by another run") from None
        except OSError:
            pass            # a filesystem without locks: the user keeps runs apart
        return self

    def __exit__(self, *exc_info: Any) -> None:
        os.close(self._lock)

    def __call__(self, world: "World", *args: Any, **kwargs: Any) -> Any:
        checkpoints = world._checkpoints = _Checkpoints(self, files.open_directory(self.directory))
        try:
            return self.program(world, *args, **kwargs)
        finally:
            os.close(checkpoints.fd)
            world._checkpoints = None


def prepare(directory: str | os.PathLike[str], identity: str) -> str:
    """Check the checkpoint directory and return its absolute path: create
    it (0700) if missing; refuse a symbolic link, a directory of another
    user, one holding files pybsp did not write, or checkpoints of another
    program or of a newer format (CheckpointError; nothing is changed)."""
    path = os.path.abspath(os.fspath(directory))
    if not os.path.lexists(path):
        os.makedirs(os.path.dirname(path), exist_ok=True)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:         # made meanwhile: checked below like any other
            pass
    if os.path.islink(path) or not os.path.isdir(path):
        raise CheckpointError(f"checkpoint directory {path!r} is " +
                              ("a symbolic link: pybsp follows none" if os.path.islink(path) else "not a directory"))
    fd = files.open_directory(path)
    try:
        foreign = sorted(name for name in os.listdir(fd) if not _OURS.match(name))
        if foreign:
            raise CheckpointError(f"{path!r} holds files that pybsp did not write ({', '.join(foreign[:5])}"
                                  f"{', ...' if len(foreign) > 5 else ''}): give bsp.run an empty or new directory")
        read_latest(fd, path, identity)
        files.check_private(fd, path)
    finally:
        os.close(fd)
    return path


def read_latest(fd: int, path: str, identity: str) -> dict[str, Any] | None:
    """The committed LATEST pointer of the directory, or None on a fresh
    start; CheckpointError if it is damaged, of a newer format, or of
    another program."""
    data = files.read_small(fd, LATEST)
    if data is None:
        return None
    try:
        latest = json.loads(data)
        version, program = latest["format"], latest["program"]
    except (ValueError, KeyError, TypeError):
        raise CheckpointError(f"{path}/{LATEST} is damaged: it is not the pointer pybsp writes") from None
    if not isinstance(version, int) or version > FORMAT:
        raise CheckpointError(f"{path} holds a checkpoint of format {version}, written by a newer pybsp; "
                              f"this one reads format {FORMAT} and older")
    if program != identity:
        raise CheckpointError(f"{path} holds checkpoints of the program {program}, not of {identity}: "
                              f"use another directory for this program")
    return latest  # type: ignore[no-any-return]  # a dict, read as above


# -- on every rank --------------------------------------------------------------

class _Checkpoints:
    """One rank's end of a checkpointed run: the directory, and how many
    saves this run has made."""

    def __init__(self, checkpointed: Checkpointed, fd: int):
        self.path = checkpointed.directory
        self.identity = checkpointed.identity
        self.run = checkpointed.run
        self.fd = fd
        self.saves = 0

    def next_name(self) -> str:
        self.saves += 1
        return f"ck-{self.run}-{self.saves}"


def save(world: "World", state: dict[str, Any]) -> None:
    """world.save: see World.save."""
    from . import checkpoint_arrays as arrays_of
    from .distarray import DistArray

    engine = world.engine
    engine.check_caller()
    arrays = {name: value for name, value in state.items() if isinstance(value, DistArray)}
    for name, array in arrays.items():
        arrays_of.check_writable(name, array)
    frames = files.serialize_values({name: value for name, value in state.items() if name not in arrays})
    digests = {name: _digest(pieces) for name, pieces in frames.items()}
    names = sorted(state)
    signature = zlib.crc32(" ".join(f"{name}{'[]' if name in arrays else ''}" for name in names).encode())
    checkpoints: _Checkpoints | None = getattr(world, "_checkpoints", None)
    part = None
    if checkpoints is not None:
        part = _write_part(world, checkpoints, sorted(arrays.items()), frames)
        engine.note_written(part["nbytes"])
    engine.post_object(SYSTEM_CHANNEL, (0,), (part, digests))
    engine.exchange(Kind.SAVE, signature & 0x7FFFFFFF,
                    site=f"{user_call_site()} (saving {', '.join(names) or 'nothing'})")
    if checkpoints is not None and part is not None and world.pid == 0:
        metadata = {name: {"shape": list(array.shape), "dtype": _dtype_text(array.dtype), **arrays_of.layout(array)}
                    for name, array in sorted(arrays.items())}
        _commit(checkpoints, part["name"], engine.objects_on(SYSTEM_CHANNEL), metadata, engine.superstep)


def _write_part(world: "World", checkpoints: _Checkpoints, arrays: list[Any], frames: dict[str, Any]) -> dict[str, Any]:
    """Write this rank's files into the next checkpoint's directory, synced."""
    from . import checkpoint_arrays as arrays_of

    name = checkpoints.next_name()
    fd = files.make_directory(checkpoints.fd, name)
    try:
        values = files.write_values(fd, f"r{world.pid}.values", frames)
        parts = {key: arrays_of.write_part(fd, f"r{world.pid}.a{k}", array)
                 for k, (key, array) in enumerate(arrays)}
        os.fsync(fd)
    finally:
        os.close(fd)
    nbytes = sum(place["length"] for place in values.values())
    nbytes += sum(part["data"]["nbytes"] for part in parts.values())
    return {"name": name, "values": values, "arrays": parts, "nbytes": nbytes}


def _commit(checkpoints: _Checkpoints, name: str, arrived: list[Any], arrays: dict[str, Any], superstep: int) -> None:
    """On rank 0, after every rank's part is on disk: the manifest, then
    LATEST, then removal of what is no longer needed."""
    parts = [part for _, (part, _) in arrived]
    digests = [digest for _, (_, digest) in arrived]
    manifest = {"format": FORMAT, "program": checkpoints.identity, "nprocs": len(parts), "superstep": superstep,
                "values": {key: all(d[key] == digests[0][key] for d in digests) for key in digests[0]},
                "arrays": arrays, "ranks": [{"values": p["values"], "arrays": p["arrays"]} for p in parts]}
    data = json.dumps(manifest, separators=(",", ":")).encode()
    fd = files.open_directory(name, checkpoints.fd)
    try:
        files.write_atomically(fd, MANIFEST, data)
    finally:
        os.close(fd)
    latest = {"format": FORMAT, "program": checkpoints.identity, "checkpoint": name,
              "manifest_sha256": hashlib.sha256(data).hexdigest()}
    files.write_atomically(checkpoints.fd, LATEST, json.dumps(latest).encode())
    _prune(checkpoints, name)


def _prune(checkpoints: _Checkpoints, committed: str) -> None:
    """Remove the older checkpoints and what crashed saves left, but not
    the checkpoints this run's other ranks may be writing already."""
    mine = f"ck-{checkpoints.run}-"
    for entry in os.listdir(checkpoints.fd):
        if entry in (LATEST, committed) or not _OURS.match(entry):
            continue
        if entry.startswith(mine) and int(entry[len(mine):]) > checkpoints.saves:
            continue
        with contextlib.suppress(OSError):      # what cannot be removed now is removed after a later save
            files.remove_tree(checkpoints.fd, entry)


def _digest(frames: list[Any]) -> str:
    digest = hashlib.sha256()
    for frame in frames:
        digest.update(frame)
    return digest.hexdigest()


def _dtype_text(dtype: Any) -> Any:
    import numpy as np
    return np.lib.format.dtype_to_descr(dtype)
