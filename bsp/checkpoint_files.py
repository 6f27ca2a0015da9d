"""The files of a checkpoint: private, written once, checked when read.

Every file is created with O_EXCL and O_NOFOLLOW, mode 0600, relative to a
directory opened with O_NOFOLLOW, so that no symbolic link planted in the
checkpoint directory is ever followed, and no file is ever overwritten in
place: a file that must change (the `LATEST` pointer, a manifest) is written
under a fresh temporary name, synced to disk, and renamed over the old one.

Two kinds of data file:

- an array part: a `.npy` file (numpy's own header, then the raw C-order
  bytes), with a CRC-32 per chunk of about CHUNK_BYTES along axis 0, so
  that a reader that needs a few rows checks only the chunks it reads;
- a values file: one rank's small values, each as a self-describing block of
  `bsp.wire` (a pickle whose numpy buffers follow it raw, out of band),
  with a CRC-32 per value.

Readers raise CheckpointError naming the file for a file that is missing,
shorter than its description, or whose checksum does not match.
"""

from __future__ import annotations

import os
import zlib
from typing import Any, BinaryIO

import numpy as np

from . import wire
from .errors import CheckpointError
from .files import write_bytes_atomically

CHUNK_BYTES = 4 << 20
_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_READ = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = _READ | getattr(os, "O_DIRECTORY", 0)
_HEADER_READERS = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}


# -- directories and small files ------------------------------------------------

def open_directory(name: str, dir_fd: int | None = None) -> int:
    """A file descriptor of directory `name` (relative to `dir_fd`), which
    must not be a symbolic link.  Raises CheckpointError otherwise."""
    try:
        return os.open(name, _DIRECTORY, dir_fd=dir_fd)
    except OSError as error:
        raise CheckpointError(f"cannot open the checkpoint directory {name!r}: {error.strerror} "
                              f"(pybsp follows no symbolic link there)") from None


def make_directory(dir_fd: int, name: str) -> int:
    """Create the private directory `name` in `dir_fd` unless it is there
    (another rank may have made it), and open it."""
    try:
        os.mkdir(name, 0o700, dir_fd=dir_fd)
    except FileExistsError:
        pass
    fd = open_directory(name, dir_fd)
    try:
        check_private(fd, name)
    except BaseException:
        os.close(fd)
        raise
    return fd


def check_private(fd: int, name: str) -> None:
    """Refuse a directory of another user; make ours 0700."""
    info = os.fstat(fd)
    if info.st_uid != os.geteuid():
        raise CheckpointError(f"{name!r} belongs to user {info.st_uid}, not to this one ({os.geteuid()})")
    if info.st_mode & 0o077:
        os.fchmod(fd, 0o700)


def create(dir_fd: int, name: str) -> BinaryIO:
    """A new file `name` (which must not exist), mode 0600, open for
    unbuffered binary writing."""
    return os.fdopen(os.open(name, _CREATE, 0o600, dir_fd=dir_fd), "wb", buffering=0)


def write_atomically(dir_fd: int, name: str, data: bytes) -> None:
    """Replace file `name` by one holding `data`, durably and at once:
    readers see the old file or the new one, never a mixture, even if this
    process dies halfway."""
    write_bytes_atomically(name, data, dir_fd=dir_fd, mode=0o600)


def read_small(dir_fd: int, name: str) -> bytes | None:
    """The bytes of file `name`, or None if there is none."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise CheckpointError(f"cannot read {name!r} in the checkpoint directory: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        return file.read()


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
        try:
            fd = os.open(name, _READ, dir_fd=dir_fd)
        except OSError as error:
            raise CheckpointError(f"{self.where}: cannot open {name}: {error.strerror}") from None
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

def serialize_values(values: dict[str, Any]) -> dict[str, list[Any]]:
    """Each value's frames (`bsp.wire.to_frames`: pickle protocol 5, numpy
    data out of band).  Raises TypeError naming a value that cannot be
    serialized."""
    frames = {}
    for name, value in values.items():
        try:
            frames[name] = wire.to_frames(value)
        except (TypeError, ValueError) as error:
            raise TypeError(f"save: the value of {name!r} cannot be saved: {error}") from None
    return frames


def write_values(dir_fd: int, name: str, frames: dict[str, list[Any]]) -> dict[str, dict[str, int]]:
    """Write every value's frames one after another into the file `name`,
    synced; return where each is (offset, length) and its crc."""
    where, offset = {}, 0
    with create(dir_fd, name) as file:
        for key, pieces in frames.items():
            crc = length = 0
            for piece in pieces:
                view = memoryview(piece).cast("B")
                crc = zlib.crc32(view, crc)
                length += view.nbytes
                _write_all(file, view)
            where[key] = {"offset": offset, "length": length, "crc": crc}
            offset += length
        os.fsync(file.fileno())
    return where


def read_value(dir_fd: int, name: str, place: dict[str, int], where: str) -> Any:
    """The value stored at `place` of the values file `name`, checked."""
    try:
        fd = os.open(name, _READ, dir_fd=dir_fd)
    except OSError as error:
        raise CheckpointError(f"{where}: cannot open {name}: {error.strerror}") from None
    with os.fdopen(fd, "rb") as file:
        file.seek(place["offset"])
        block = file.read(place["length"])
    if len(block) != place["length"] or zlib.crc32(block) != place["crc"]:
        raise CheckpointError(f"{where}: {name} is truncated or damaged (the checksum of the bytes "
                              f"{place['offset']}..{place['offset'] + place['length'] - 1} does not match)")
    return wire.from_block(block)
