"""What a run could leave behind, and how to see it: child processes,
shared mappings in this process, and the /dev/shm entries and temp files
that pybsp, multiprocessing or an MPI launcher could leave (looking at those
names only, so that other programs running on the machine meanwhile do not
count).  Used by the suite's conftest and by scripts/fault_injection.py."""

from __future__ import annotations

import os
import re
import tempfile

import psutil

from bsp.launch import launched_by_mpi

# Temp files of Python's tempfile and multiprocessing and of MPI launchers;
# shared memory of semaphores and of MPI libraries.
_TEMP_NAMES = re.compile(r"^(tmp|pymp-|hydra|mpich|ompi|bsp)")
_SHM_NAMES = re.compile(r"^(sem\.|mpich|ucx|vader|psm2|bsp)")


def _shared_mappings() -> set[str]:
    try:
        with open("/proc/self/maps") as maps:
            return {line for line in maps if " rw-s " in line}
    except FileNotFoundError:       # not Linux
        return set()


def snapshot() -> dict[str, set]:
    found = {
        "processes": {child.pid for child in psutil.Process().children(recursive=True)},
        "temp files": {name for name in os.listdir(tempfile.gettempdir()) if _TEMP_NAMES.match(name)},
    }
    if not launched_by_mpi():
        # Under MPI, the MPI library maps and caches shared memory of its own
        # for each communicator; the MPI backend itself makes none.
        found["/dev/shm"] = {name for name in os.listdir("/dev/shm") if _SHM_NAMES.match(name)}
        found["shared mappings"] = _shared_mappings()
    return found


def new_since(before: dict[str, set]) -> dict[str, list]:
    """What is there now that was not `before`, by kind; empty if nothing."""
    after = snapshot()
    news = {kind: sorted(after[kind] - before[kind], key=str) for kind in before}
    return {kind: items for kind, items in news.items() if items}
