"""The files of a checkpoint: private, written once, checked when read.

Every file is created with O_EXCL and O_NOFOLLOW, mode 0600, relative to a
directory opened with O_NOFOLLOW, so that no symbolic link planted in the
checkpoint directory is ever followed, and no file is ever overwritten in
place: a file that must change (the `LATEST` pointer, a manifest) is written
under a fresh temporary name, synced to disk, and renamed over the old one.

Every file and directory read back must be safe from other users (see
bsp.base.trusted_files): one that another user owns or could write is
refused, never chmod'ed, since what a checkpoint holds may be pickles.

Two kinds of data file:

- an array part: a `.npy` file (numpy's own header, then the raw C-order
  bytes), with a CRC-32 per chunk of about CHUNK_BYTES along axis 0, so
  that a reader that needs a few rows checks only the chunks it reads;
- a values file: one rank's small values one after another, each with a
  CRC-32 and an encoding: JSON for plain data (None, bool, int, float,
  str, and lists and str-keyed dicts of those), .npy for a numpy array
  (read with allow_pickle=False), and for anything else a block of
  `bsp.core.wire` (a pickle whose numpy buffers follow it raw): only these
  run code when read.

Readers raise CheckpointError naming the file for a file that is missing,
shorter than its description, or whose checksum does not match; writers
raise CheckpointError naming the directory for one that cannot be written.
"""

from __future__ import annotations

import errno
import io
import json
import os
import secrets
import zlib
from typing import Any, BinaryIO

import numpy as np

from bsp.core import wire
from bsp.errors import CheckpointError
from bsp.base.atomic_files import write_bytes_atomically
from bsp.base.trusted_files import check_trusted, unsafe_file

CHUNK_BYTES = 4 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = _READ | getattr(os, "O_DIRECTORY", 0)
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


# -- directories and small files ------------------------------------------------

TRUSTED_ONLY = ("a checkpoint is trusted code: keep it in a directory that only you can write, such as one "
                "bsp.run creates (mode 0700)")


def open_directory(name: str, dir_fd: int | None = None) -> int:
    """A file descriptor of directory `name` (relative to `dir_fd`), which
    must not be a symbolic link, nor another user's or writable by others.
    Raises CheckpointError otherwise."""
    try:
        fd = os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as error:
        raise CheckpointError(f"cannot open the checkpoint directory {name!r}: {error.strerror} "
                              f"(pybsp follows no symbolic link there)") from None
    _check_safe(fd, name)
    return fd


def check_directory(fd: int, path: str) -> None:
    """Refuse (CheckpointError saying why) the checkpoint directory `path`,
    open as `fd`, if another user owns it or could write it or a directory
    above it (as ssh refuses keys)."""
    check_trusted(fd, path, CheckpointError, TRUSTED_ONLY)


def _check_safe(fd: int, name: str) -> None:
    reason = unsafe_file(os.fstat(fd), name)
    if reason is not None:
        os.close(fd)
        raise CheckpointError(f"{reason}: pybsp does not read it back ({TRUSTED_ONLY})")


def make_directory(dir_fd: int, name: str) -> int:
    """Create the private directory `name` in `dir_fd` unless it is there
    (another rank may have made it), and open it (see open_directory)."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass
    return open_directory(name, dir_fd)


def write_error(path: str, error: OSError) -> CheckpointError:
    """The CheckpointError of a write into the checkpoint directory `path`
    (absolute) that failed with `error`: why, and what to do."""
    why = {errno.EROFS: "it is on a read-only filesystem", errno.EACCES: "this user may not write there",
           errno.EPERM: "this user may not write there", errno.ENOSPC: "the disk is full",
           errno.EDQUOT: "the disk quota is reached"}.get(error.errno or 0, "")
    name = errno.errorcode.get(error.errno or 0, str(error.errno))
    return CheckpointError(f"cannot write into the checkpoint directory {path}: {error.strerror or error} [{name}]"
                           f"{': ' + why if why else ''}; give bsp.run(..., checkpoint=DIR) a directory that you can "
                           f"write, on a filesystem with space for the checkpoints")


def check_writable(fd: int, path: str, probe: str) -> None:
    """Raise write_error unless a file can be made in the directory `fd`
    (at `path`): a read-only filesystem, a directory without write
    permission, are refused before the run.  `probe`: the name to try."""
    try:
        os.close(os.open(probe, _CREATE, 0o600, dir_fd=fd))
        os.unlink(probe, dir_fd=fd)
    except OSError as error:
        raise write_error(path, error) from None


def create(dir_fd: int, name: str) -> BinaryIO:
    """A new file `name` (which must not exist), mode 0600, open for
    unbuffered binary writing."""
    return os.fdopen(os.open(name, _CREATE, 0o600, dir_fd=dir_fd), "wb", buffering=0)


def write_atomically(dir_fd: int, name: str, data: bytes) -> None:
    """Replace file `name` by one holding `data`, durably and at once:
    readers see the old file or the new one, never a mixture, even if this
    process dies halfway."""
    write_bytes_atomically(name, data, dir_fd=dir_fd, mode=0o600)


def read_small(dir_fd: int, name: str, path: str | None = None) -> bytes | None:
    """The bytes of file `name` (at `path`, for messages), or None if there is none."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f"cannot read {name!r} in the checkpoint directory: {error.strerror}") from None
    _check_safe(fd, path or name)
    with os.fdopen(fd, "rb") as file:
        return file.read()


def _open_part(dir_fd: int, name: str, where: str) -> int:
    """A data file of the checkpoint, open for reading, checked as safe."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError as error:
        raise CheckpointError(f"{where}: cannot open {name}: {error.strerror}") from None
    _check_safe(fd, f"{where}/{name}")
    return fd


def remove_tree(dir_fd: int, name: str) -> None:
    """Remove `name` from `dir_fd`: a file, or a directory of files (a
    checkpoint), without following symbolic links."""
    try:
        sub = os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError:
        os.unlink(name, dir_fd=dir_fd)          # a file, or a link (removed, not followed)
        return
    try:
        for entry in os.listdir(sub):
            os.unlink(entry, dir_fd=sub)
    finally:
        os.close(sub)
    os.rmdir(name, dir_fd=dir_fd)


def _write_all(file: BinaryIO, view: memoryview) -> None:
    while view:
        view = view[file.write(view):]


# -- array parts ----------------------------------------------------------------

def _bytes_of(array: np.ndarray) -> memoryview:
    """The bytes of a C-contiguous array, of any dtype, without a copy."""
    return array.reshape(-1).view(np.uint8).data


def _row_bytes(array: np.ndarray) -> int:
    return array.itemsize * int(np.prod(array.shape[1:], dtype=np.int64))


def write_array(dir_fd: int, name: str, array: np.ndarray) -> dict[str, Any]:
    """Write `array` as the .npy file `name`, synced; return its description
    (file, chunk_rows, crcs, nbytes).  numpy's header, then the raw bytes:
    nothing is pickled."""
    array = np.ascontiguousarray(array)
    rows = max(1, CHUNK_BYTES // max(1, _row_bytes(array)))     # rows per checksummed chunk
    data = _bytes_of(array)
    step = max(1, rows * _row_bytes(array))
    crcs = []
    with create(dir_fd, name) as file:
        np.lib.format.write_array_header_2_0(file, np.lib.format.header_data_from_array_1_0(array))
        for start in range(0, len(data), step):
            piece = data[start:start + step]
            crcs.append(zlib.crc32(piece))
            _write_all(file, piece)
        os.fsync(file.fileno())
    return {"file": name, "chunk_rows": rows, "crcs": crcs, "nbytes": array.nbytes}


class ArrayPart:
    """A written array part, opened for reading (a context manager: the
    file is closed at its end): `rows(selection)` reads
    the chunks that hold the selected rows (with read calls: on some
    machines a page fault per 4 KiB of a mapped file costs ten times the
    copy), checks each chunk's checksum, and returns the rows."""

    def __init__(self, dir_fd: int, description: dict[str, Any], shape: tuple[int, ...], dtype: np.dtype,
                 where: str):
        self.where = where
        self.description = description
        self.shape = tuple(shape)
        self.dtype = np.dtype(dtype)
        self._fd = self._open(dir_fd, description["file"])

    def _open(self, dir_fd: int, name: str) -> int:
        """The file, its header checked against the description."""
        fd = _open_part(dir_fd, name, self.where)
        file = os.fdopen(fd, "rb", closefd=False)
        try:
            read_header = _HEADER_READERS.get(np.lib.format.read_magic(file))
            if read_header is None:
                raise ValueError("an unknown .npy version")
            shape, fortran, stored = read_header(file)
            self.offset = file.tell()
        except ValueError as error:
            os.close(fd)
            raise CheckpointError(f"{self.where}: {name} is not a .npy file pybsp wrote ({error})") from None
        size, expected = os.fstat(fd).st_size, self.offset + self.description["nbytes"]
        if tuple(shape) != self.shape or stored != self.dtype or fortran or size != expected:
            os.close(fd)
            what = f"is {size} bytes long, not {expected}: truncated or damaged" if size != expected else \
                f"holds a {shape} {stored} array, where the manifest says {self.shape} {self.dtype}"
            raise CheckpointError(f"{self.where}: {name} {what}")
        return fd

    def __enter__(self) -> "ArrayPart":
        return self

    def __exit__(self, *exc_info: Any) -> None:
        os.close(self._fd)

    def rows(self, selection: slice | np.ndarray) -> np.ndarray:
        """array[selection] (along axis 0), after checking its chunks: the
        chunks from the first selected row's to the last's are read."""
        positions = range(self.shape[0])[selection] if isinstance(selection, slice) else np.asarray(selection)
        if not len(positions):
            return np.empty((0, *self.shape[1:]), self.dtype)
        per_chunk = self.description["chunk_rows"]
        low, high = (positions[0], positions[-1]) if isinstance(positions, range) else (positions.min(), positions.max())
        first, last = int(min(low, high)) // per_chunk, int(max(low, high)) // per_chunk
        start, stop = first * per_chunk, min(self.shape[0], (last + 1) * per_chunk)
        block = np.empty((stop - start, *self.shape[1:]), self.dtype)
        row_bytes = block.nbytes // (stop - start)
        for chunk in range(first, last + 1):    # a read call per chunk: one call of 100 MiB can take seconds
            piece = block[(chunk - first) * per_chunk:(chunk - first + 1) * per_chunk]
            if piece.nbytes:
                self._read(_bytes_of(piece), self.offset + chunk * per_chunk * row_bytes)
                self._check(piece, chunk, per_chunk)
        if isinstance(positions, range):
            return block[positions.start - start:positions.stop - start:positions.step]
        picked: np.ndarray = block[positions - start]
        return picked

    def _read(self, data: memoryview, offset: int) -> None:
        while data:
            count = os.preadv(self._fd, [data], offset)
            if count == 0:
                raise CheckpointError(f"{self.where}: {self.description['file']} ended early: truncated")
            data, offset = data[count:], offset + count

    def _check(self, piece: np.ndarray, chunk: int, per_chunk: int) -> None:
        """The chunk just read, against its checksum (while in the cache)."""
        if zlib.crc32(_bytes_of(piece)) != self.description["crcs"][chunk]:
            raise CheckpointError(f"{self.where}: {self.description['file']} is damaged: the checksum of "
                                  f"rows {chunk * per_chunk}..{min(self.shape[0], (chunk + 1) * per_chunk) - 1} "
                                  f"does not match")


# -- values ---------------------------------------------------------------------

JSON, NPY, PICKLE = "json", "npy", "pickle"


def serialize_values(values: dict[str, Any]) -> dict[str, tuple[str, list[Any]]]:
    """Each value's encoding and frames (see the module): JSON for plain
    data, .npy for a numpy array, else `bsp.core.wire.to_frames` (pickle
    protocol 5, numpy data out of band).  Raises TypeError naming a value
    that cannot be serialized."""
    frames = {}
    for name, value in values.items():
        try:
            frames[name] = _encoded(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"save: the value of {name!r} cannot be saved: {error}") from None
    return frames


def _encoded(value: Any) -> tuple[str, list[Any]]:
    if _plain(value):
        return JSON, [json.dumps(value).encode()]
    if type(value) is np.ndarray and not value.dtype.hasobject:
        array = np.ascontiguousarray(value)
        header = io.BytesIO()
        np.lib.format.write_array_header_2_0(header, np.lib.format.header_data_from_array_1_0(array))
        return NPY, [header.getvalue(), _bytes_of(array)]
    return PICKLE, wire.to_frames(value)


def _plain(value: Any, depth: int = 0) -> bool:
    """Whether JSON carries `value` back as it is (exact types: a tuple or a
    subclass of int would come back otherwise)."""
    kind = type(value)
    if kind in (int, float, str, bool) or value is None:
        return True
    if depth > 100:
        return False
    if kind is list:
        return all(_plain(item, depth + 1) for item in value)
    if kind is dict:
        return all(type(key) is str and _plain(item, depth + 1) for key, item in value.items())
    return False


def write_values(dir_fd: int, name: str, frames: dict[str, tuple[str, list[Any]]]) -> dict[str, dict[str, Any]]:
    """Write every value's frames one after another into the file `name`,
    synced; return where each is (offset, length), its crc and encoding."""
    where, offset = {}, 0
    with create(dir_fd, name) as file:
        for key, (encoding, pieces) in frames.items():
            crc = length = 0
            for piece in pieces:
                view = memoryview(piece).cast("B")
                crc = zlib.crc32(view, crc)
                length += view.nbytes
                _write_all(file, view)
            where[key] = {"offset": offset, "length": length, "crc": crc, "encoding": encoding}
            offset += length
        os.fsync(file.fileno())
    return where


def read_value(dir_fd: int, name: str, place: dict[str, Any], where: str) -> Any:
    """The value stored at `place` of the values file `name`, checked."""
    with os.fdopen(_open_part(dir_fd, name, where), "rb") as file:
        file.seek(place["offset"])
        block = file.read(place["length"])
    if len(block) != place["length"] or zlib.crc32(block) != place["crc"]:
        raise CheckpointError(f"{where}: {name} is truncated or damaged (the checksum of the bytes "
                              f"{place['offset']}..{place['offset'] + place['length'] - 1} does not match)")
    encoding = place.get("encoding", PICKLE)
    if encoding == JSON:
        return json.loads(block)
    if encoding == NPY:
        return np.load(io.BytesIO(block), allow_pickle=False)
    return wire.from_block(block)


def probe_name(latest: str) -> str:
    """A name for check_writable's probe that the directory's check of
    what pybsp wrote takes for a temporary LATEST (see bsp.base.atomic_files)."""
    return f".{latest}.{secrets.token_hex(6)}.tmp"
