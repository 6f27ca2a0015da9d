"""Checkpoint and restart at superstep boundaries: `bsp.run(...,
checkpoint=DIR)`, `world.save(**state)` and `world.restore()`.

A superstep boundary is a consistent cut of a BSP run: nothing is in flight.
`save` writes, on every rank at once, what the program names, and the run
can later start again from there, on the same number of ranks or, for what
allows it, on another.

The directory (created 0700 if missing; every file in it 0600):

    LATEST                  the committed checkpoint: JSON {format, program,
                            program_sha256, program_file, pybsp, checkpoint,
                            manifest_sha256}, replaced atomically
    ck-<run>-<n>/           one checkpoint: the n-th save of run <run>
        manifest.json       what every rank wrote (written by rank 0, last)
        r<pid>.values       rank pid's values (JSON, .npy, or else bsp.core.wire
                            blocks; CRC-32 each: see bsp.checkpoint.files)
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

A directory belongs to one program, identified by what it is: a SHA-256 of
its function's code (bytecode, constants, names, nested functions' too) and
of its source file's contents.  Another program, or this one changed, is
refused, unless the run says `resume="force"` (a program changed on purpose).
A checkpoint may hold pickles, which run code when read: the directory and
every file in it must be safe from other users (bsp.checkpoint.files).

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
import types
import warnings
import zlib
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Callable, ContextManager

from bsp.checkpoint import files as files
from bsp.base.callsite import user_call_site
from bsp.core.engine import SYSTEM_CHANNEL
from bsp.errors import CheckpointError
from bsp.base.atomic_files import temporary_names
from bsp.core.sync_record import Kind
from bsp.version import __version__

if TYPE_CHECKING:
    from bsp.world import World

FORMAT = 2         # 2: values in JSON or .npy where they can be, the program's SHA-256
LATEST = "LATEST"
MANIFEST = "manifest.json"
# LATEST, a LATEST that rank 0 died writing, and the checkpoints
_OURS = re.compile(rf"^({LATEST}|{temporary_names(LATEST)}|ck-[0-9a-f]+-\d+)$")


# -- in the launching process -------------------------------------------------

@dataclass(frozen=True)
class Identity:
    """What a checkpoint directory's program is: its name ('file.py:qualname',
    for messages), a SHA-256 of what it is, and its file."""

    name: str
    sha256: str
    file: str | None


def program_identity(program: Callable[..., Any]) -> Identity:
    """The identity of the program (of what a functools.partial wraps): a
    checkpoint directory belongs to one program."""
    while isinstance(program, functools.partial):
        program = program.func
    code = getattr(program, "__code__", None)
    name = getattr(program, "__qualname__", None) or type(program).__qualname__
    where = os.path.basename(code.co_filename) if code is not None else getattr(program, "__module__", "?")
    digest = hashlib.sha256(f"{where}:{name}".encode())
    filename = None
    if code is not None:
        _digest_code(code, digest)
        filename = os.path.abspath(code.co_filename) if os.path.isfile(code.co_filename) else None
        if filename is not None:
            with open(filename, "rb") as source:
                digest.update(source.read())
    return Identity(f"{where}:{name}", digest.hexdigest(), filename)


def _digest_code(code: types.CodeType, digest: Any) -> None:
    """Feed `digest` what `code` does, independent of where it lies (file,
    line) and of the process (the hash seed orders frozensets)."""
    digest.update(code.co_code)
    digest.update(repr((code.co_names, code.co_varnames, code.co_freevars, code.co_cellvars)).encode())
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            _digest_code(constant, digest)
        elif isinstance(constant, frozenset):
            digest.update(repr(sorted(map(repr, constant))).encode())
        else:
            digest.update(repr(constant).encode())


RESUME_CHOICES = (None, "force")


def checkpointing(program: Callable[..., Any], directory: Any, resume: str | None = None
                  ) -> ContextManager[Callable[..., Any]]:
    """A context that gives `program`, made to save into and restore from
    `directory` (bsp.run's checkpoint option; None: BSP_CHECKPOINT, if set;
    False or neither: `program` as it is), and holds the directory for this
    run meanwhile.  Checks the directory first, creating it if missing;
    raises TypeError for a directory that is not a path, CheckpointError
    for one that cannot be used (see `prepare`) or that another run holds.
    `resume="force"`: resume from a checkpoint of another program (this
    one, changed on purpose)."""
    if resume not in RESUME_CHOICES:
        raise ValueError(f"resume must be None or 'force', not {resume!r}")
    if directory is None:
        directory = os.environ.get("BSP_CHECKPOINT") or None
    if directory is None or directory is False:
        if resume is not None:
            raise ValueError("resume='force' needs a checkpoint directory: bsp.run(..., checkpoint=DIR, resume='force')")
        return contextlib.nullcontext(program)
    if not isinstance(directory, (str, os.PathLike)):
        raise TypeError(f"checkpoint must be the path of a directory, not {type(directory).__name__!r}")
    return Checkpointed(program, directory, resume == "force")


class Checkpointed:
    """A program with its checkpoint directory.  It travels to every rank
    (pickled, under MPI) and there gives the World its checkpoints.  It
    looks like the program to the profile and the exit site."""

    def __init__(self, program: Callable[..., Any], directory: str | os.PathLike[str], force: bool = False):
        self.program = self.__wrapped__ = program
        self.__qualname__ = getattr(program, "__qualname__", type(program).__qualname__)
        self.__name__ = getattr(program, "__name__", self.__qualname__)
        self.__module__ = getattr(program, "__module__", type(program).__module__)
        self.identity = program_identity(program)
        self.force = force
        self.directory = prepare(directory, self.identity, force)
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


def prepare(directory: str | os.PathLike[str], identity: Identity, force: bool = False) -> str:
    """Check the checkpoint directory and return its absolute path: create
    it (0700) if missing; refuse (CheckpointError; nothing is changed) a
    symbolic link, a directory that another user owns or could write (or
    one above it), one that cannot be written, one holding files pybsp did
    not write, or checkpoints of a newer format, or of another program
    (unless `force`).  Warns when another pybsp version wrote them."""
    path = os.path.abspath(os.fspath(directory))
    if not os.path.lexists(path):
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            os.mkdir(path, 0o700)
        except FileExistsError:         # made meanwhile: checked below like any other
            pass
        except OSError as error:
            raise files.write_error(path, error) from None
    if os.path.islink(path) or not os.path.isdir(path):
        raise CheckpointError(f"checkpoint directory {path!r} is " +
                              ("a symbolic link: pybsp follows none" if os.path.islink(path) else "not a directory"))
    fd = files.open_directory(path)
    try:
        files.check_directory(fd, path)
        foreign = sorted(name for name in os.listdir(fd) if not _OURS.match(name))
        if foreign:
            raise CheckpointError(f"{path!r} holds files that pybsp did not write ({', '.join(foreign[:5])}"
                                  f"{', ...' if len(foreign) > 5 else ''}): give bsp.run an empty or new directory")
        latest = read_latest(fd, path, identity, force)
        if latest is not None and latest.get("pybsp") != __version__:
            warnings.warn(f"{path} holds a checkpoint written by pybsp {latest.get('pybsp', 'before 0.1.0')}; "
                          f"this is pybsp {__version__}", UserWarning, stacklevel=6)
        files.check_writable(fd, path, files.probe_name(LATEST))
    finally:
        os.close(fd)
    return path


def read_latest(fd: int, path: str, identity: Identity, force: bool = False) -> dict[str, Any] | None:
    """The committed LATEST pointer of the directory, or None on a fresh
    start; CheckpointError if it is damaged, of a newer format, or of
    another program (unless `force`)."""
    data = files.read_small(fd, LATEST, f"{path}/{LATEST}")
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
    if not force:
        _check_program(latest, path, identity)
    return latest  # type: ignore[no-any-return]  # a dict, read as above


def _check_program(latest: dict[str, Any], path: str, identity: Identity) -> None:
    """CheckpointError, naming both, unless LATEST's program is `identity`
    (format 1 named it only)."""
    program, digest = latest["program"], latest.get("program_sha256", identity.sha256)
    if program == identity.name and digest == identity.sha256:
        return
    force = (f'if it is the same program, changed on purpose, resume with bsp.run(..., checkpoint={path!r}, '
             f'resume="force"); else use another directory for this program')
    if program != identity.name:
        raise CheckpointError(f"{path} holds checkpoints of the program {program}, not of {identity.name}: {force}")
    raise CheckpointError(f"{path} holds checkpoints of the program {program} of {latest.get('program_file')} "
                          f"(SHA-256 {str(digest)[:12]}), and this is {identity.name} of {identity.file} "
                          f"(SHA-256 {identity.sha256[:12]}): the same name, but another program (its code or its "
                          f"file differs): {force}")


# -- on every rank --------------------------------------------------------------

class _Checkpoints:
    """One rank's end of a checkpointed run: the directory, and how many
    saves this run has made."""

    def __init__(self, checkpointed: Checkpointed, fd: int):
        self.path = checkpointed.directory
        self.identity = checkpointed.identity
        self.force = checkpointed.force
        self.run = checkpointed.run
        self.fd = fd
        self.saves = 0

    def next_name(self) -> str:
        self.saves += 1
        return f"ck-{self.run}-{self.saves}"


def save(world: "World", state: dict[str, Any]) -> None:
    """world.save: see World.save."""
    from bsp.checkpoint import arrays as arrays_of
    from bsp.arrays.distarray import DistArray

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
        try:
            part = _write_part(world, checkpoints, sorted(arrays.items()), frames)
        except OSError as error:
            raise files.write_error(checkpoints.path, error) from None
        engine.note_written(part["nbytes"])
    engine.post_object(SYSTEM_CHANNEL, (0,), (part, digests))
    engine.exchange(Kind.SAVE, signature & 0x7FFFFFFF,
                    site=f"{user_call_site()} (saving {', '.join(names) or 'nothing'})")
    if checkpoints is not None and part is not None and world.pid == 0:
        metadata = {name: {"shape": list(array.shape), "dtype": _dtype_text(array.dtype), **arrays_of.layout(array)}
                    for name, array in sorted(arrays.items())}
        try:
            _commit(checkpoints, part["name"], engine.objects_on(SYSTEM_CHANNEL), metadata, engine.superstep)
        except OSError as error:
            raise files.write_error(checkpoints.path, error) from None


def _write_part(world: "World", checkpoints: _Checkpoints, arrays: list[Any], frames: dict[str, Any]) -> dict[str, Any]:
    """Write this rank's files into the next checkpoint's directory, synced."""
    from bsp.checkpoint import arrays as arrays_of

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
    identity = checkpoints.identity
    manifest = {"format": FORMAT, "program": identity.name, "nprocs": len(parts), "superstep": superstep,
                "values": {key: all(d[key] == digests[0][key] for d in digests) for key in digests[0]},
                "arrays": arrays, "ranks": [{"values": p["values"], "arrays": p["arrays"]} for p in parts]}
    data = json.dumps(manifest, separators=(",", ":")).encode()
    fd = files.open_directory(name, checkpoints.fd)
    try:
        files.write_atomically(fd, MANIFEST, data)
    finally:
        os.close(fd)
    latest = {"format": FORMAT, "program": identity.name, "program_sha256": identity.sha256,
              "program_file": identity.file, "pybsp": __version__, "checkpoint": name,
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


def _digest(encoded: tuple[str, list[Any]]) -> str:
    encoding, frames = encoded
    digest = hashlib.sha256(encoding.encode())
    for frame in frames:
        digest.update(frame)
    return digest.hexdigest()


def _dtype_text(dtype: Any) -> Any:
    import numpy as np
    return np.lib.format.dtype_to_descr(dtype)
