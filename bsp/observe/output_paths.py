"""Paths the user names for files pybsp writes (profiles, traces, plots)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Union

PathLike = Union[str, "os.PathLike[str]"]


def check_path(path: Any, role: str = "trace") -> Path:
    """`path` as a Path where a file can be written; raises TypeError for a
    path that is not one, ValueError for one in a missing directory or that
    is a directory, naming `role` in the message."""
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"{role} must be the path of a file to write, not {type(path).__name__!r}")
    target = Path(path)
    if os.fspath(path) == "" or target.is_dir():
        raise ValueError(f"{role} must be the path of a file to write, not the directory {os.fspath(path)!r}")
    if not target.parent.is_dir():
        raise ValueError(f"{role}: the directory {os.fspath(target.parent)!r} of {os.fspath(path)!r} does not exist")
    return target
