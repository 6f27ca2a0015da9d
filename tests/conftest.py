"""The suite runs on the fork backend (plain pytest) and, unchanged, on the
MPI backend (`mpiexec -n N python -m pytest --with-mpi`): bsp.testing's
plugin makes rank 0 run the tests while the other ranks serve its runs.

Every test checks that its runs left nothing behind: no child process, no
shared mapping in this process, and none of the /dev/shm entries and temp
files that pybsp, multiprocessing or an MPI launcher could leave (looking at
those names only, so that other programs running on the machine meanwhile
do not count)."""

import os
import re
import tempfile

import psutil
import pytest

from bsp.launch import launched_by_mpi

pytest_plugins = ["bsp.testing"]


def _shared_mappings() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            return [line for line in maps if " rw-s " in line]
    except FileNotFoundError:       # not Linux
        return []


# What a run could leave: temp files of Python's tempfile and multiprocessing,
# of MPI launchers; shared memory of semaphores and of MPI libraries.
_TEMP_NAMES = re.compile(r"^(tmp|pymp-|hydra|mpich|ompi|bsp)")
_SHM_NAMES = re.compile(r"^(sem\.|mpich|ucx|vader|psm2|bsp)")


def _snapshot() -> dict:
    snapshot = {
        "children": {child.pid for child in psutil.Process().children(recursive=True)},
        "temp files": {name for name in os.listdir(tempfile.gettempdir()) if _TEMP_NAMES.match(name)},
    }
    if not launched_by_mpi():
        # Under MPI, the MPI library maps and caches shared memory of its own
        # for each communicator; the MPI backend itself makes none.
        snapshot["/dev/shm"] = {name for name in os.listdir("/dev/shm") if _SHM_NAMES.match(name)}
        snapshot["shared mappings"] = set(_shared_mappings())
    return snapshot


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = _snapshot()
    yield
    after = _snapshot()
    leftovers = {kind: sorted(after[kind] - before[kind]) for kind in before}
    leftovers = {kind: items for kind, items in leftovers.items() if items}
    assert not leftovers, f"the test left things behind: {leftovers}"
