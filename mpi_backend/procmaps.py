"""Which files a process maps, read from /proc/PID/maps (Linux): the MPI
library mpi4py loaded, and the MPI library's shared-memory files in
/dev/shm, which a killed job can leave behind."""

from __future__ import annotations


def mapped_files(maps: str = "/proc/self/maps", marker: str = "") -> set[str]:
    """The paths in the maps file `maps` (one process's) on the lines that
    contain `marker`; empty when the file cannot be read (the process is
    gone, or another user's)."""
    try:
        with open(maps) as lines:
            fields = [line.split(maxsplit=5) for line in lines if marker in line]
    except OSError:
        return set()
    return {field[5].strip() for field in fields if len(field) == 6}
