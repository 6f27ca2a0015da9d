"""The errors a BSP run can end in.

Every error here is raised identically on both backends: on the ranks that
take part in the failing superstep, and by `bsp.run` in the launching process.
They pickle, so that a rank can hand them to the launcher.
"""

from __future__ import annotations

import traceback
from types import TracebackType


class BSPError(Exception):
    """Base class of every error pybsp raises on its own account."""


class RemoteError(BSPError):
    """A rank raised an exception.

    Every other rank raises this at its next sync, and `bsp.run` raises it in
    the launching process.  `rank` is the failing rank (the lowest, if several
    failed in the same superstep), `remote_traceback` its formatted traceback,
    and `failures` maps every rank that failed in that superstep to its
    traceback.
    """

    def __init__(self, rank: int, remote_traceback: str, failures: dict[int, str] | None = None):
        self.rank = rank
        self.remote_traceback = remote_traceback
        self.failures = dict(failures) if failures else {rank: remote_traceback}
        super().__init__(rank, remote_traceback, self.failures)

    @classmethod
    def of(cls, failures: dict[int, str]) -> "RemoteError":
        """The error of a superstep in which the ranks of `failures` (pid ->
        traceback; not empty) failed: the lowest rank's, carrying them all.
        The sync rules (every rank) and bsp.run (the launching process) both
        raise this one."""
        first = min(failures)
        return cls(first, failures[first], failures)

    def __str__(self) -> str:
        shown = shortened(self.remote_traceback.rstrip())
        last_line = shown.splitlines()[-1] if shown else "?"
        others = sorted(set(self.failures) - {self.rank})
        also = f" (ranks {others} failed too)" if others else ""
        return f"rank {self.rank} raised {last_line}{also}\n--- traceback of rank {self.rank} ---\n{shown}"


LONGEST_LINE = 4096             # characters of a traceback's line that are shown, or carried to the other ranks
LONGEST_TRACEBACK = 64 << 10    # characters of a whole traceback


def shortened(text: str) -> str:
    """A traceback as it is shown, and carried to the other ranks: each
    line cut to LONGEST_LINE characters, and the whole to about
    LONGEST_TRACEBACK (its first and last lines kept), saying what was
    cut.  (RemoteError.remote_traceback keeps the whole text where the
    failing rank's own report arrives: bsp.run's, in the launching process.)"""
    if len(text) <= LONGEST_TRACEBACK:
        return text
    lines, start = [], 0
    while start < len(text):        # line by line, without copying a long one (it may be 200 MB)
        end = text.find("\n", start)
        end = len(text) if end < 0 else end
        cut = end - start - LONGEST_LINE
        lines.append(text[start:end] if cut <= 0 else
                     f"{text[start:start + LONGEST_LINE]} [... {cut} more characters: truncated]")
        start = end + 1
    text = "\n".join(lines)
    if len(text) <= LONGEST_TRACEBACK:
        return text
    half = LONGEST_TRACEBACK // 2
    head, tail = text[:half].rsplit("\n", 1)[0], text[-half:].split("\n", 1)[-1]
    return f"{head}\n[... {len(text) - len(head) - len(tail)} characters of the traceback: truncated]\n{tail}"


class SyncMismatchError(BSPError):
    """Ranks disagree about the superstep they are in.

    One rank called `sync` while another called a collective, returned from
    the program, or created a different data object.  `call_sites[pid]` says
    what each rank called and where (file:line of the user's code).
    """

    def __init__(self, call_sites: list[str], superstep: int = -1):
        self.call_sites = list(call_sites)
        self.superstep = superstep
        super().__init__(self.call_sites, superstep)

    def __str__(self) -> str:
        lines = [f"ranks disagree at the end of superstep {self.superstep}:"]
        lines += [f"  rank {pid}: {site}" for pid, site in enumerate(self.call_sites)]
        return "\n".join(lines)


class RankDiedError(BSPError):
    """A rank's process died without finishing its part of the protocol
    (killed by a signal, `os._exit`, the OOM killer).  `how` says how."""

    def __init__(self, rank: int, how: str):
        self.rank = rank
        self.how = how
        super().__init__(rank, how)

    def __str__(self) -> str:
        return f"rank {self.rank} died: {self.how}"


class RunTimeoutError(BSPError, TimeoutError):
    """A run outlived its time limit; `waiting` and `computing` list the
    ranks that were waiting at a sync and those that were still computing."""

    def __init__(self, timeout: float, waiting: list[int], computing: list[int], superstep: int = -1):
        self.timeout = timeout
        self.waiting = list(waiting)
        self.computing = list(computing)
        self.superstep = superstep
        super().__init__(timeout, self.waiting, self.computing, superstep)

    def __str__(self) -> str:
        return (f"the run exceeded its time limit of {self.timeout:g} s; "
                f"ranks {self.computing} had not reached the sync of superstep {self.superstep}, "
                f"ranks {self.waiting} were waiting there")


class SyncTimeoutError(BSPError, TimeoutError):
    """Some ranks waited at a sync for longer than the sync timeout while
    others never arrived (an endless loop, a rank stuck in I/O).  `late`
    are the ranks that did not arrive, `waiting` those that waited."""

    def __init__(self, timeout: float, late: list[int], waiting: list[int], superstep: int = -1,
                 stopped: list[int] | None = None):
        self.timeout = timeout
        self.late = list(late)
        self.waiting = list(waiting)
        self.superstep = superstep
        self.stopped = list(stopped or [])      # those of `late` that were stopped (SIGSTOP, a debugger)
        super().__init__(timeout, self.late, self.waiting, superstep, self.stopped)

    def __str__(self) -> str:
        stopped = f" (ranks {self.stopped} are stopped: SIGSTOP, or a debugger)" if self.stopped else ""
        return (f"ranks {self.late} did not reach the sync of superstep {self.superstep} within the sync "
                f"timeout of {self.timeout:g} s{stopped}; ranks {self.waiting} waited there "
                f"(set the timeout with bsp.run(..., sync_timeout=seconds) or BSP_SYNC_TIMEOUT; 0 turns it off)")


class ReplayDivergence(BSPError):
    """A replayed rank (`bsp.recordings.replay`) did otherwise than the recorded run:
    it called another sync or collective, created other data objects, sent
    other messages, or went on past the end of the record.  `rank`, the
    `superstep` and the `site` (file:line in function) of the call say
    where; `done` is what the replay did, `recorded` what the record holds."""

    def __init__(self, rank: int, superstep: int, site: str, done: str, recorded: str):
        self.rank = rank
        self.superstep = superstep
        self.site = site
        self.done = done
        self.recorded = recorded
        super().__init__(rank, superstep, site, done, recorded)

    def __str__(self) -> str:
        return (f"the replay of rank {self.rank} diverged from the record at superstep {self.superstep}, "
                f"at {self.site}: it {self.done}; the recorded run {self.recorded}")


class CheckpointError(BSPError):
    """A checkpoint directory cannot be used: it holds another program's
    checkpoints or files pybsp did not write, was written by a newer pybsp,
    is a symbolic link, or a file of the checkpoint being restored is
    missing, truncated or damaged.  The message names the directory or file.
    Nothing in the directory is changed when this is raised."""


LONGEST_MESSAGE = 16 << 20     # characters of an exception's message that a failing rank reports whole


def brief_traceback(error: BaseException, frames: TracebackType | None) -> str | None:
    """The traceback of `error` with its message cut to LONGEST_LINE
    characters, saying so, when the message is longer than LONGEST_MESSAGE
    (formatting and sending a message of 200 MB takes seconds, while the
    other ranks wait); None when it is not."""
    message = str(error)
    if len(message) <= LONGEST_MESSAGE:
        return None
    kind = type(error)
    name = kind.__qualname__ if kind.__module__ == "builtins" else f"{kind.__module__}.{kind.__qualname__}"
    return ("Traceback (most recent call last):\n" + "".join(traceback.format_tb(frames)) +
            f"{name}: {message[:LONGEST_LINE]} [... {len(message) - LONGEST_LINE} more characters: truncated]\n")
