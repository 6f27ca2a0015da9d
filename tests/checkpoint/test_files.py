"""The files pybsp writes are written atomically and never through a
planted link (bsp.base.atomic_files), and `bsp run --mpi` removes only the shared
memory files of its own job (issue 16, item 11)."""

import os
import secrets
from pathlib import Path

import pytest

import bsp
from bsp.base.atomic_files import write_atomically, write_bytes_atomically
from bsp.machine import MachineParameters

pytestmark = pytest.mark.mpi_skip


@pytest.fixture
def planted(tmp_path):
    """A file someone else owns, and a link to it where pybsp will write."""
    victim = tmp_path / "victim"
    victim.write_bytes(b"not yours")
    link = tmp_path / "out.json"
    link.symlink_to(victim)
    return victim, link


def test_a_planted_link_is_replaced_not_written_through(planted):
    victim, link = planted
    write_bytes_atomically(link, b"new")
    assert victim.read_bytes() == b"not yours"
    assert not link.is_symlink() and link.read_bytes() == b"new"


def test_a_machine_file_is_written_atomically_past_a_planted_link(planted):
    victim, link = planted
    MachineParameters(r=1.0, g=2.0, l=3.0, nprocs=2, backend="fork").save(str(link))
    assert victim.read_bytes() == b"not yours"
    assert MachineParameters.load(str(link)).g == 2.0


def test_a_trace_is_written_atomically_past_a_planted_link(planted):
    victim, link = planted
    bsp.run(lambda world: world.sync(), nprocs=2, backend="fork", trace=str(link))
    assert victim.read_bytes() == b"not yours"
    assert bsp.observe.trace.read(link)["traceEvents"]


def test_a_failed_write_keeps_the_old_file_and_leaves_no_temporary(tmp_path):
    path = tmp_path / "record"
    path.write_bytes(b"old")

    def write(out):
        out.write(b"half")
        raise OSError("disk full")

    with pytest.raises(OSError, match="disk full"):
        write_atomically(path, write)
    assert path.read_bytes() == b"old"
    assert os.listdir(tmp_path) == ["record"]


def test_the_mode_is_the_callers(tmp_path):
    path = tmp_path / "checkpoint"
    write_bytes_atomically(path, b"x", mode=0o600)
    assert path.stat().st_mode & 0o777 == 0o600


mpiexec_module = pytest.importorskip("mpi_backend.mpiexec")


@pytest.mark.skipif(not os.path.isdir("/dev/shm"), reason="no /dev/shm")
def test_only_the_jobs_own_shared_memory_is_removed():
    """A new, unmapped MPI-named file that the job's ranks did not map
    (another job's, another user's) stays; one they mapped goes."""
    theirs = Path(f"/dev/shm/mpich_pybsp_test_{secrets.token_hex(4)}")
    ours = Path(f"/dev/shm/mpich_pybsp_test_{secrets.token_hex(4)}")
    before = mpiexec_module._shared_memory_files()
    try:
        theirs.write_bytes(b"x")
        ours.write_bytes(b"x")
        removed = mpiexec_module.remove_orphaned_shared_memory(before, {str(ours)})
        assert removed == [str(ours)]
        assert theirs.exists() and not ours.exists()
    finally:
        for path in (theirs, ours):
            path.unlink(missing_ok=True)
