"""Argument checks shared by the public calls: they raise on the calling
rank, at the call, with a message that says what was wrong."""

from __future__ import annotations

import operator
from typing import Any


def check_pid(value: Any, nprocs: int, role: str = "dest") -> int:
    """Return `value` as a pid in 0..nprocs-1, or raise TypeError/ValueError."""
    try:
        pid = operator.index(value)
    except TypeError:
        raise TypeError(f"{role} must be an integer pid, not {type(value).__name__!r}") from None
    if not 0 <= pid < nprocs:
        raise ValueError(f"{role} {pid} is out of range: pids run from 0 to {nprocs - 1} ({nprocs} ranks)")
    return pid


def check_callable(value: Any, role: str) -> None:
    if not callable(value):
        raise TypeError(f"{role} must be callable, not {type(value).__name__!r}")


def check_integer(value: Any, requirement: str) -> int:
    """Return `value` as an int; a bool, or anything that is not an integer,
    raises TypeError saying `requirement` ("width must be an int") and what
    was given instead."""
    if isinstance(value, bool):
        raise TypeError(f"{requirement}, not a bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{requirement}, not {type(value).__name__!r}") from None


def check_nprocs(value: Any, source: str = "nprocs") -> int:
    """Return `value` as a number of ranks >= 1, or raise TypeError/ValueError."""
    nprocs = check_integer(value, f"{source} must be a positive integer")
    if nprocs < 1:
        raise ValueError(f"{source} must be at least 1, got {nprocs}")
    return nprocs
