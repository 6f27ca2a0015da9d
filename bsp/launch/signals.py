"""Signal handlers that pybsp installs for the length of a run, without
taking a signal from a program that handles it itself."""

from __future__ import annotations

import contextlib
import signal
import threading
from typing import Any, Iterator


@contextlib.contextmanager
def replaced(signum: int, handler: Any, expected: Any = signal.SIG_DFL) -> Iterator[bool]:
    """Within this block, `handler` handles `signum`, if this is the main
    thread (the only one that may set handlers) and the handler now is
    `expected` (anything else is the program's own: it stays); `expected`
    again afterwards.  Yields whether `handler` was installed."""
    if threading.current_thread() is not threading.main_thread() or signal.getsignal(signum) is not expected:
        yield False
        return
    signal.signal(signum, handler)
    try:
        yield True
    finally:
        signal.signal(signum, expected)
