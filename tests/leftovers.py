"""What a run could leave behind, and how to see it: child processes, shared
mappings in this process, temp files, and /dev/shm entries.  Used by the
suite's conftest and by tests/fault_injection.py.

Only what this run's own processes made counts, so that other programs on a
busy machine (other test suites, pip, MPI jobs) cannot fail a test:

- temp files: the run gets a private temp directory (`use_private_tempdir`,
  through TMPDIR, which every process the run starts inherits: ranks, MPI
  launchers and their ranks), and everything new in it counts;
- files that programs put in shared directories whatever TMPDIR says (hydra,
  MPICH's launcher, writes its topology file to /tmp; semaphores and MPI
  shared memory live in /dev/shm): a witness thread notes, while the test
  runs, which such files the run's processes (this one and its descendants)
  hold open or mapped.  A new file counts when the run's processes held it,
  it stays (SETTLE_SECONDS: an MPI launcher removes its job's orphans once
  the job is gone), and no process outside the run holds it now (a live
  process of another program does: theirs, in use).  Files only other
  programs held, whether they leave them or not, never count.
"""

from __future__ import annotations

import atexit
import glob
import os
import re
import shutil
import stat
import tempfile
import threading
import time

import psutil

from bsp.launch.mpi_environment import job_rank, launched_by_mpi

# Temp files that Python's tempfile, multiprocessing and MPI launchers make
# outside TMPDIR; shared memory of semaphores and of MPI libraries.
_SHARED_TEMP_NAMES = re.compile(r"^(hydra|mpich|ompi|bsp)")
_SHM_NAMES = re.compile(r"^(sem\.|mpich|ucx|vader|psm2|bsp)")
_PRIVATE_VARIABLE = "PYBSP_TEST_TMPDIR"
# pytest's own temp directories (tmp_path), which it keeps and prunes itself.
_PYTEST_TEMP = re.compile(r"^pytest-of-")
# A new file in a shared directory must still be there after this long to
# count: other programs' temp files come and go, and an MPI launcher removes
# its job's orphans within seconds of the job's end.
SETTLE_SECONDS = 6.0
WITNESS_SECONDS = 0.1
_SETTLE_POLL_SECONDS = 0.1

_private_dir: str | None = None


def use_private_tempdir() -> str:
    """Give this process, and every process it starts from now on, a
    private temp directory (through TMPDIR and tempfile.tempdir), removed
    at exit by the process that made it; return its path.

    One directory per run: an outer run's (PYBSP_TEST_TMPDIR, as
    scripts/test exports) is reused, one folder of it per pytest-xdist
    worker; the ranks of an MPI job share one
    named after their common parent, the launcher's proxy."""
    global _private_dir
    if _private_dir is not None:
        return _private_dir
    path = os.environ.get(_PRIVATE_VARIABLE, "")
    if not (path and _is_ours(path)):
        path = _shared_by_mpi_ranks() if launched_by_mpi() else _made_for_this_process()
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")
    if worker and not path.endswith(f"{os.sep}{worker}"):
        # pytest-xdist's workers run tests side by side: one directory each,
        # so that a worker counts only what its own tests left
        path = os.path.join(path, worker)
        os.makedirs(path, 0o700, exist_ok=True)
    os.environ[_PRIVATE_VARIABLE] = os.environ["TMPDIR"] = path
    tempfile.tempdir = path
    _private_dir = path
    return path


def _made_for_this_process() -> str:
    path = tempfile.mkdtemp(prefix="pybsp-tests-")
    atexit.register(shutil.rmtree, path, True)
    return path


def _shared_by_mpi_ranks() -> str:
    """The ranks' common directory; rank 0, the last to leave (the others
    end without Python's exit handlers), removes it."""
    base = tempfile.gettempdir()
    path = os.path.join(base, f"pybsp-tests-{os.getuid()}-{os.getppid()}")
    try:
        os.mkdir(path, 0o700)
    except FileExistsError:
        if not _is_ours(path):
            raise RuntimeError(f"{path} exists and is not a private directory of this user: "
                               f"someone else made it; remove it or set {_PRIVATE_VARIABLE}") from None
    if launched_by_mpi() and job_rank() == 0:
        atexit.register(shutil.rmtree, path, True)
    return path


def _is_ours(path: str) -> bool:
    """A real directory (not a symlink to one) of this user that nobody else may enter."""
    try:
        info = os.lstat(path)
    except OSError:
        return False
    return stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid() and not info.st_mode & 0o077


def _private_entries() -> set[str]:
    if _private_dir is None:
        return set()
    return {name for name in os.listdir(_private_dir) if not _PYTEST_TEMP.match(name)}


def _shared_entries() -> set[str]:
    """Paths in shared directories with names of the kinds above."""
    found = {os.path.join("/tmp", name) for name in _listdir("/tmp") if _SHARED_TEMP_NAMES.match(name)}
    if not launched_by_mpi():
        # Under MPI, the MPI library maps and caches shared memory of its own
        # for each communicator; the MPI backend itself makes none.
        found |= {os.path.join("/dev/shm", name) for name in _listdir("/dev/shm") if _SHM_NAMES.match(name)}
    return found


def _listdir(path: str) -> list[str]:
    try:
        return os.listdir(path)
    except OSError:
        return []


def _shared_mappings() -> set[str]:
    try:
        with open("/proc/self/maps") as maps:
            return {line for line in maps if " rw-s " in line}
    except FileNotFoundError:       # not Linux
        return set()


class Snapshot(dict):
    """What there is, by kind, and the witness of what the run holds from now on."""

    witness: "_Witness"


def snapshot() -> Snapshot:
    found = Snapshot({
        "processes": {child.pid for child in psutil.Process().children(recursive=True)},
        "temp files": _private_entries(),
        "shared files": _shared_entries(),
    })
    if not launched_by_mpi():
        found["shared mappings"] = _shared_mappings()
    found.witness = _Witness()
    return found


class _Witness(threading.Thread):
    """Notes the files in shared directories, of the names above, that this
    process and its descendants hold (open or mapped), every WITNESS_SECONDS
    until stopped."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.held: set[str] = set()
        self._finished = threading.Event()
        self.start()

    def run(self) -> None:
        while True:
            self._look()
            if self._finished.wait(WITNESS_SECONDS):
                return

    def _look(self) -> None:
        try:
            pids = [os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))]
        except psutil.Error:
            return
        for pid in pids:
            self.held |= {path for path in _open_files(f"/proc/{pid}") | _mapped_files(f"/proc/{pid}")
                          if _in_shared_directory(path)}

    def stop(self) -> set[str]:
        """Stop (after one last look); what the run held."""
        self._finished.set()
        self.join()
        self._look()
        return self.held


def _in_shared_directory(path: str) -> bool:
    directory, name = os.path.split(path)
    return (directory == "/tmp" and bool(_SHARED_TEMP_NAMES.match(name))) or \
        (directory == "/dev/shm" and bool(_SHM_NAMES.match(name)))


def new_since(before: dict[str, set], settle: float = SETTLE_SECONDS) -> dict[str, list]:
    """What is there now that was not `before`, by kind; empty if nothing.
    `settle`: how long a new file in a shared directory may take to go."""
    held = before.witness.stop() if isinstance(before, Snapshot) else set()
    after = snapshot()
    after.witness.stop()
    news = {kind: after[kind] - before[kind] for kind in before}
    if news["shared files"]:
        news["shared files"] = _left_by_this_run(news["shared files"] & held, settle)
    return {kind: sorted(items, key=str) for kind, items in news.items() if items}


def _left_by_this_run(paths: set[str], settle: float) -> set[str]:
    """Of new files in shared directories, those that stay and that no
    process outside this run holds."""
    deadline = time.monotonic() + settle
    while True:
        paths = {path for path in paths if os.path.lexists(path)}
        paths -= held_by_others(paths)
        if not paths or time.monotonic() >= deadline:
            return paths
        time.sleep(_SETTLE_POLL_SECONDS)


def held_by_others(paths: set[str]) -> set[str]:
    """Those of `paths` that a live process other than this one and its
    descendants has open or mapped."""
    ours = {os.getpid(), *(child.pid for child in psutil.Process().children(recursive=True))}
    held: set[str] = set()
    for entry in glob.glob("/proc/[0-9]*"):
        if int(os.path.basename(entry)) in ours:
            continue
        held |= paths & (_open_files(entry) | _mapped_files(entry))
        if held == paths:
            break
    return held


def _open_files(process: str) -> set[str]:
    found = set()
    for fd in _listdir(f"{process}/fd"):
        try:
            found.add(os.readlink(f"{process}/fd/{fd}"))
        except OSError:
            continue
    return found


def _mapped_files(process: str) -> set[str]:
    try:
        with open(f"{process}/maps") as maps:
            fields = [line.split(maxsplit=5) for line in maps]
    except OSError:
        return set()
    return {field[5].strip() for field in fields if len(field) == 6}


# multiprocessing's named semaphores: each is a file in /dev/shm from its
# creation until multiprocessing unlinks it, microseconds later, unless its
# creator is killed in between (pybsp's own semaphores have no name on Linux).
_NAMED_SEMAPHORE = re.compile(r"^sem\.mp-")
_SEMAPHORE_SETTLE_SECONDS = 0.5


def named_semaphores() -> set[str]:
    """The named semaphores of multiprocessing in /dev/shm now."""
    return {name for name in _listdir("/dev/shm") if _NAMED_SEMAPHORE.match(name)}


def semaphores_left_since(before: set[str]) -> list[str]:
    """Named semaphores made since `before` (from `named_semaphores`) that
    stay: one that another process of the machine is making at this moment
    exists for microseconds and is gone after a short wait."""
    new = named_semaphores() - before
    if new:
        time.sleep(_SEMAPHORE_SETTLE_SECONDS)
        new &= named_semaphores()
    return sorted(new)
