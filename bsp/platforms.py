"""The platforms pybsp runs on, checked when `bsp` is imported.

- Linux: everything (the fork backend, the MPI backend).
- macOS: the same code paths (POSIX fork, anonymous shared memory, MPI);
  tested on Linux only.  A program whose libraries cannot survive a fork on
  macOS (some system frameworks) should use the MPI backend.
- Windows: not supported: there is no fork, and the standard output
  handling uses POSIX calls.  WSL (a Linux) works.
"""

from __future__ import annotations

import os
import sys

SUPPORTED = ("linux", "darwin")


def check_platform(platform: str = sys.platform) -> None:
    """Raise ImportError, saying what to do, on a platform pybsp does not
    run on."""
    if platform.startswith(SUPPORTED) and hasattr(os, "fork"):
        return
    raise ImportError(
        f"pybsp runs on Linux and macOS, not on {platform!r}: its ranks are forked processes or the "
        f"processes of an MPI job, and it needs POSIX (fork, shared memory).  On Windows, use WSL.")
