"""The ranks' standard streams: shared by every rank of a run (the fork
ranks inherit the launching process's; an MPI launcher gathers its ranks'),
so each rank writes whole lines, which never mix with another rank's."""

from __future__ import annotations

import sys


def write_whole_lines() -> None:
    """Write each line of stdout and stderr in one piece.  Unbuffered output
    (PYTHONUNBUFFERED=1) would write a print's text and its newline
    separately, and another rank's line could fall between them."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.reconfigure(line_buffering=True, write_through=False)
        except (AttributeError, ValueError):
            pass


def flush() -> None:
    """Flush stdout and stderr, ignoring streams that are closed or gone."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (AttributeError, ValueError, OSError):
            pass
