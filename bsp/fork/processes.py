"""The rank processes of a fork run, as the operating system sees them:
tying a rank's life to the launching process, ending ranks and what they
started, telling how one ended, and what a run needs of the system.

Each rank leads a process group of its own, so that whatever it starts
(subprocesses, multiprocessing children, forked copies) can be ended with it.
What leaves that group (a daemon: setsid, then a second fork that orphans
it) is caught another way: during a run the launching process is a child
subreaper (Linux's PR_SET_CHILD_SUBREAPER), so that such an orphan becomes
its child rather than init's, and at the end of the run it ends every
orphan it adopted (see `adopting_orphans`).
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import resource
import select
import signal
import sys
import threading
import time
from typing import Callable, Iterable, Iterator

from bsp.errors import BSPError

GRACE_SECONDS = 2.0     # a surviving rank's time to clean up (finally blocks) after SIGTERM
_PR_SET_PDEATHSIG = 1
_PR_SET_CHILD_SUBREAPER, _PR_GET_CHILD_SUBREAPER = 36, 37
_ORPHAN_ROUNDS = 64     # an orphan ended may leave orphans of its own: rounds until none is left
_REAP_POLL_SECONDS = 0.01
ORPHANED = 70           # a rank's exit status when it finds its launching process gone


def become_group_leader() -> None:
    """In a new rank: lead a process group of its own (see the module)."""
    try:
        os.setpgid(0, 0)
    except OSError:
        pass


def die_with(launcher: int) -> None:
    """In a new rank: die when the launching process dies.  The parent-death
    signal covers a death from now on; the launching process may already
    have died since the fork, which only getppid can tell."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != launcher:
        os._exit(ORPHANED)


def watch_exit(pid: int) -> int | None:
    """A file descriptor that becomes readable when `pid` ends (Linux's
    pidfd), or None where there is none; the caller closes it."""
    opener = getattr(os, "pidfd_open", None)
    if opener is None:
        return None
    try:
        fd: int = opener(pid)
        return fd
    except OSError:         # already gone (and reaped, with SIGCHLD ignored), or an old kernel
        return None


def has_ended(pid: int) -> bool:
    """Whether the child `pid` has ended (without reaping it)."""
    try:
        return os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None
    except ChildProcessError:
        return True


def reap(pid: int) -> int | None:
    """Wait for the child `pid`; its wait status, None when it is unknown
    (reaped already: the launching program ignores SIGCHLD)."""
    try:
        return os.waitpid(pid, 0)[1]
    except ChildProcessError:
        return None


def signal_group(leader: int, sig: int = signal.SIGKILL) -> None:
    """Send `sig` to the process group that `leader` leads, if there is one."""
    try:
        os.killpg(leader, sig)
    except (ProcessLookupError, PermissionError):
        pass


def end_ranks(ranks: Iterable[int], grace: float = GRACE_SECONDS) -> None:
    """End the rank processes `ranks` (children of this process, not yet
    reaped) and everything they started: SIGTERM first, so that the
    program's finally blocks and context managers run, then, after at most
    `grace` seconds, SIGKILL to each rank's whole process group; then reap them."""
    pids = list(ranks)
    for pid in pids:
        _signal(pid, signal.SIGTERM)
        _signal(pid, signal.SIGCONT)        # a stopped rank (SIGSTOP, a debugger) takes it now
    deadline = time.monotonic() + grace
    waiting = [pid for pid in pids if not has_ended(pid)]
    while waiting and time.monotonic() < deadline:
        _wait_for_any(waiting, deadline - time.monotonic())
        waiting = [pid for pid in waiting if not has_ended(pid)]
    for pid in pids:
        signal_group(pid)       # the rank (if still there: the zombie keeps its group's id) and its children
        _signal(pid, signal.SIGKILL)
    for pid in pids:
        reap(pid)


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


def _wait_for_any(pids: list[int], seconds: float) -> None:
    """Return when one of `pids` may have ended, or after `seconds`."""
    fds = [fd for fd in map(watch_exit, pids) if fd is not None]
    try:
        if len(fds) == len(pids):
            select.select(fds, [], [], max(0.0, seconds))
        else:
            time.sleep(min(_REAP_POLL_SECONDS, max(0.0, seconds)))
    finally:
        for fd in fds:
            os.close(fd)


# -- orphans --------------------------------------------------------------------

_adoption = threading.Lock()
_adopting = 0                   # runs in progress that adopt orphans (runs may overlap, from threads)
_kept: set[int] = set()         # this process's children when the first of them began
_was_subreaper = False


@contextlib.contextmanager
def adopting_orphans() -> Iterator[None]:
    """During a run (of several overlapping, from the first to the last):
    make this process a child subreaper, so that what a rank starts and
    orphans (a double-forked daemon) becomes its child; at the end, end
    every child it adopted meanwhile, and whatever they started.  An
    adopted orphan is told from this process's own children by its process
    group: it left this process's (a rank leads a group of its own, a
    daemon a session of its own).  Linux only; elsewhere nothing is done."""
    _begin_adopting()
    try:
        yield
    finally:
        _end_adopting()


def _begin_adopting() -> None:
    global _adopting, _kept, _was_subreaper
    with _adoption:
        _adopting += 1
        if _adopting == 1:
            _was_subreaper = _subreaper() is not False
            _kept = set(children(os.getpid()))
            _prctl(_PR_SET_CHILD_SUBREAPER, 1)


def _end_adopting() -> None:
    global _adopting
    with _adoption:
        _adopting -= 1
        if _adopting == 0:
            try:
                end_orphans(_kept)
            finally:
                if not _was_subreaper:
                    _prctl(_PR_SET_CHILD_SUBREAPER, 0)


def end_orphans(kept: set[int]) -> list[int]:
    """Kill (SIGKILL) and reap the children of this process that are not
    in `kept` nor in its process group, and all their descendants; return
    the pids of those children."""
    mine, ended = os.getpgrp(), []
    for _ in range(_ORPHAN_ROUNDS):
        orphans = [pid for pid in children(os.getpid()) if pid not in kept and _group(pid) not in (mine, None)]
        if not orphans:
            break
        for pid in [*orphans, *(found for pid in orphans for found in descendants(pid))]:
            _signal(pid, signal.SIGKILL)
        for pid in orphans:
            reap(pid)
        ended += orphans
    return ended


def _group(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None


def _subreaper() -> bool | None:
    """Whether this process is a child subreaper; None where Linux's prctl is not."""
    flag = ctypes.c_int(0)
    return None if _prctl(_PR_GET_CHILD_SUBREAPER, ctypes.addressof(flag)) is None else bool(flag.value)


def _prctl(option: int, value: int) -> int | None:
    if not sys.platform.startswith("linux"):
        return None
    return int(ctypes.CDLL(None, use_errno=True).prctl(option, ctypes.c_ulong(value), 0, 0, 0))


def descendants(root: int) -> list[int]:
    """The pids of `root`'s children, their children, and so on (Linux:
    read from /proc; elsewhere none)."""
    found: list[int] = []
    todo = [root]
    while todo:
        for child in children(todo.pop()):
            found.append(child)
            todo.append(child)
    return found


def children(pid: int) -> list[int]:
    """The pids of `pid`'s children (of all its threads), from /proc."""
    found: list[int] = []
    try:
        threads = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return found
    for thread in threads:
        try:
            with open(f"/proc/{pid}/task/{thread}/children") as text:
                found.extend(int(word) for word in text.read().split())
        except (OSError, ValueError):
            continue
    return found


def describe_exit(status: int | None) -> str:
    if status is None:
        return "ended before finishing the program (its exit status is unknown: SIGCHLD is ignored)"
    if os.WIFSIGNALED(status):
        number = os.WTERMSIG(status)
        try:
            name = signal.Signals(number).name
        except ValueError:
            name = "an unknown signal"
        return f"killed by signal {number} ({name})"
    code = os.waitstatus_to_exitcode(status)
    return f"exited with status {code} before finishing the program (os._exit, or a crash)"


def is_stopped(pid: int) -> bool:
    """Whether `pid` is stopped (SIGSTOP, Ctrl-Z) just now; False where
    /proc cannot tell."""
    try:
        with open(f"/proc/{pid}/stat") as text:
            return text.read().rsplit(")", 1)[1].split()[0] in ("T", "t")
    except (OSError, IndexError):
        return False


# File descriptors the launching process holds per rank during a run: the
# outcome pipe (both ends while forking), and the rank's exit watch.
FDS_PER_RANK = 3
_RELAY_FDS_PER_RANK = 4         # when the output is relayed: a pipe each for stdout and stderr


def check_descriptors(nprocs: int, relayed: bool) -> None:
    """Raise BSPError, before anything is made, when this process has too
    few file descriptors left for a run of `nprocs` ranks."""
    needed = nprocs * (FDS_PER_RANK + (_RELAY_FDS_PER_RANK if relayed else 0))
    soft, _ = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return
    free = soft - _open_descriptors()
    if needed > free:
        raise BSPError(f"a fork run of {nprocs} ranks needs {needed} file descriptors in the launching "
                       f"process, but only {free} of its limit of {soft} are free: raise the limit "
                       f"(ulimit -n {soft - free + needed + 16}) or run fewer ranks")


def _open_descriptors() -> int:
    for folder in ("/proc/self/fd", "/dev/fd"):
        try:
            return len(os.listdir(folder)) - 1      # less the one listdir opened
        except OSError:
            continue
    return 0


def explain(error: OSError, nprocs: int, what: str) -> BSPError:
    """A BSPError that says which system resource ran out while making `what`
    for a run of `nprocs` ranks, and what such a run needs."""
    needs: dict[int, Callable[[], str]] = {
        errno.EMFILE: lambda: f"file descriptors ran out (ulimit -n is {_nofile()}; a run of {nprocs} "
                              f"ranks needs about {FDS_PER_RANK * nprocs} in the launching process)",
        errno.ENFILE: lambda: "the system's table of open files is full",
        errno.EAGAIN: lambda: f"the system refused another process (the limit on processes, ulimit -u "
                              f"{_nproc()}, or the cgroup's pids.max, is reached; a run of {nprocs} "
                              f"ranks needs {nprocs} processes)",
        errno.ENOMEM: lambda: f"memory ran out (a run of {nprocs} ranks needs {nprocs} processes and "
                              f"their shared memory)",
        errno.ENOSPC: lambda: "shared memory (/dev/shm) is full",
    }
    reason = needs.get(error.errno or 0, lambda: str(error))()
    return BSPError(f"could not make {what}: {reason} [{errno.errorcode.get(error.errno or 0, error.errno)}]")


def _nofile() -> str:
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)


def _nproc() -> str:
    soft = resource.getrlimit(resource.RLIMIT_NPROC)[0]
    return "unlimited" if soft == resource.RLIM_INFINITY else str(soft)
