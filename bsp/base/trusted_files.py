"""Whether a file pybsp is about to read back (a checkpoint, a record) is
safe from other users: what such a file holds may run as code (pickles),
so a file that another user wrote, or could have replaced, must not be
opened as ours.

The rule is ssh's for keys, with one exception for shared directories:

- the file (or directory) itself belongs to this user (or to root), and no
  other user may write it: no group or other write bit;
- every directory above it belongs to this user or to root, and no other
  user may write it, unless it is sticky (1777, as /tmp is): there others
  may add files, but not rename or remove ours.

Checks are made on the open file (fstat), so that what is checked is what
is read, and on the directories above by name (lstat, following no link).
Nothing is changed: a directory found unsafe is refused, never chmod'ed.
"""

from __future__ import annotations

import os
import stat

_OTHERS_WRITE = stat.S_IWGRP | stat.S_IWOTH


def unsafe_file(info: os.stat_result, path: str) -> str | None:
    """Why the file or directory of `info` (found at `path`) is unsafe to
    read back, or None: another user owns it, or may write it."""
    mine = os.geteuid()
    if info.st_uid not in (mine, 0):
        return f"{path} belongs to user {info.st_uid}, not to this one ({mine})"
    if info.st_mode & _OTHERS_WRITE:
        who = "its group and other users" if info.st_mode & stat.S_IWOTH else "its group"
        return (f"{path} may be written by {who} (mode {stat.S_IMODE(info.st_mode):04o}), who could have "
                f"planted what it holds")
    return None


def unsafe_ancestors(path: str) -> str | None:
    """Why a directory above `path` (an absolute path, links resolved) lets
    another user replace it, or None (see the module)."""
    mine = os.geteuid()
    folder = os.path.dirname(path)
    while True:
        try:
            info = os.lstat(folder)
        except OSError:
            return None         # gone meanwhile: opening the file will say so
        if info.st_uid not in (mine, 0):
            return f"the directory {folder} above {path} belongs to user {info.st_uid}, who could replace it"
        if info.st_mode & _OTHERS_WRITE and not info.st_mode & stat.S_ISVTX:
            return (f"the directory {folder} above {path} may be written by other users (mode "
                    f"{stat.S_IMODE(info.st_mode):04o}, not sticky), who could replace it")
        parent = os.path.dirname(folder)
        if parent == folder:
            return None
        folder = parent


def check_trusted(fd: int, path: str, error: type[Exception], advice: str) -> None:
    """Raise `error` (with `advice`: what to do) unless the open file or
    directory `fd`, found at `path`, and every directory above it are safe
    from other users (see the module)."""
    real = os.path.realpath(path)
    reason = unsafe_file(os.fstat(fd), path) or unsafe_ancestors(real)
    if reason is not None:
        raise error(f"{reason}: pybsp does not read it back ({advice})")
