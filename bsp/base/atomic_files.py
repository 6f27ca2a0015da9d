"""Writing the files pybsp makes (machine files, traces, records,
checkpoints) atomically, and never through a planted link.

A file is written under a fresh temporary name in its own directory
(created with O_EXCL | O_NOFOLLOW, so that nothing already there, a
symbolic link least of all, is opened), synced to disk, and renamed over
its final name.  Readers see the old file or the new one, never part of
one, even if the writer dies halfway; a symbolic link at the final name is
replaced, not written through, so a link planted in a shared directory
(/tmp) cannot redirect the write to another file.
"""

from __future__ import annotations

import os
import re
import secrets
from typing import BinaryIO, Callable

_CREATE = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)


def write_atomically(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], *,
                     dir_fd: int | None = None, mode: int = 0o666) -> int:
    """Call `write(file)` on a new temporary file beside `path`, then put it
    in place of `path` (see the module); return its size in bytes.  With
    `dir_fd`, `path` is a name in that open directory.  `mode` is the new
    file's (less the umask).  Raises OSError as the system does; the
    temporary file is gone either way."""
    folder = os.open(os.path.dirname(os.path.abspath(path)), _DIRECTORY) if dir_fd is None else dir_fd
    name = os.path.basename(path) if dir_fd is None else os.fspath(path)
    temporary = f".{name}.{secrets.token_hex(6)}.tmp"    # matched by temporary_names(name)
    try:
        fd = os.open(temporary, _CREATE, mode, dir_fd=folder)
        try:
            with os.fdopen(fd, "wb") as out:
                write(out)
                out.flush()
                os.fsync(out.fileno())
                size = out.tell()
            os.rename(temporary, name, src_dir_fd=folder, dst_dir_fd=folder)
        except BaseException:
            os.unlink(temporary, dir_fd=folder)
            raise
        _sync_directory(folder)
        return size
    finally:
        if dir_fd is None:
            os.close(folder)


def temporary_names(name: str) -> str:
    """A regular expression that matches the temporary names under which
    `name` is written: a directory that must hold only pybsp's files can
    hold one of these, left by a writer that died before its rename."""
    return rf"\.{re.escape(name)}\.[0-9a-f]{{12}}\.tmp"


def write_bytes_atomically(path: str | os.PathLike[str], data: bytes, *, dir_fd: int | None = None,
                           mode: int = 0o666) -> int:
    """`write_atomically` of `data`."""
    def write(out: BinaryIO) -> None:
        view = memoryview(data)
        while view:
            view = view[out.write(view):]
    return write_atomically(path, write, dir_fd=dir_fd, mode=mode)


def _sync_directory(folder: int) -> None:
    """Make the rename durable (some file systems refuse to sync a directory)."""
    try:
        os.fsync(folder)
    except OSError:
        pass
