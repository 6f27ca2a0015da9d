"""Tracebacks as the user reads them: the user's frames and the error,
without pybsp's own frames (bsp.run's launcher, the fork supervisor, the
data objects' argument checks...), as numpy's and trio's errors read.

Only errors of the kinds pybsp raises for the user lose those frames (its
own errors, and numpy's argument errors: TypeError, ValueError, IndexError
and the like); any other (an AttributeError, an AssertionError) would be a
fault of pybsp's, and keeps them.  BSP_DEBUG=1 keeps every frame."""

from __future__ import annotations

import os
import traceback
from types import TracebackType

from bsp.errors import BSPError

# What pybsp raises for the user (numpy's exception types for bad arguments).
FOR_THE_USER: tuple[type[BaseException], ...] = (BSPError, TypeError, ValueError, LookupError,
                                                 NotImplementedError)

_OURS = tuple(os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), name)
              + os.sep for name in ("bsp", "mpi_backend"))


def debugging() -> bool:
    """Whether BSP_DEBUG asks for pybsp's own frames to be shown."""
    return os.environ.get("BSP_DEBUG", "") not in ("", "0")


def ours(filename: str) -> bool:
    """Whether `filename` is a module of pybsp (bsp or mpi_backend)."""
    return os.path.abspath(filename).startswith(_OURS)


def user_traceback(error: BaseException, frames: TracebackType | None) -> str:
    """The text of `error` with `frames`, and of the errors chained to it,
    without pybsp's frames for those raised for the user (unless
    BSP_DEBUG, or all the frames are pybsp's: then they all show)."""
    shown = traceback.TracebackException(type(error), error, frames)
    if not debugging():
        _trim(shown, set())
    return "".join(shown.format())


def _trim(shown: traceback.TracebackException, seen: set[int]) -> None:
    if id(shown) in seen:
        return
    seen.add(id(shown))
    kept = [frame for frame in shown.stack if not ours(frame.filename)]
    if kept and shown.exc_type is not None and issubclass(shown.exc_type, FOR_THE_USER):
        shown.stack = traceback.StackSummary.from_list(kept)
    for chained in (shown.__cause__, shown.__context__):
        if chained is not None:
            _trim(chained, seen)
