"""The suite's own leftover check (leftovers.py): it sees every leak a run of
the suite can make (a temp file, shared memory, a process), and nothing that
other programs on the machine make meanwhile.  Each test plants something,
asks the checker, and removes what it planted."""

import os
import signal
import subprocess
import sys
import tempfile
import textwrap
import uuid

import pytest

import leftovers

pytestmark = pytest.mark.mpi_skip


def test_the_run_has_a_private_temp_directory_its_children_inherit():
    private = leftovers.use_private_tempdir()
    assert tempfile.gettempdir() == private == os.environ["TMPDIR"]
    assert os.stat(private).st_uid == os.getuid() and os.stat(private).st_mode & 0o077 == 0
    child = subprocess.run([sys.executable, "-c", "import tempfile; print(tempfile.gettempdir())"],
                           capture_output=True, text=True, check=True)
    assert child.stdout.strip() == private


def test_a_temp_file_left_by_the_run_is_caught():
    before = leftovers.snapshot()
    handle, path = tempfile.mkstemp()
    os.close(handle)
    try:
        assert leftovers.new_since(before) == {"temp files": [os.path.basename(path)]}
    finally:
        os.unlink(path)
    assert leftovers.new_since(before) == {}


def test_a_temp_file_of_another_program_in_the_shared_tmp_is_not_counted():
    before = leftovers.snapshot()
    handle, path = tempfile.mkstemp(dir="/tmp")       # any name: another program's
    try:
        assert leftovers.new_since(before) == {}
    finally:
        os.close(handle)
        os.unlink(path)


HOLDER = textwrap.dedent('''
    import mmap, os, sys, time
    fd = os.open(sys.argv[1], os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600)
    os.ftruncate(fd, 4096)
    memory = mmap.mmap(fd, 4096)
    time.sleep(float(sys.argv[2]))      # dies without unlinking it, as a killed semaphore creator would
''')


def test_shared_memory_left_by_the_run_is_caught():
    before = leftovers.snapshot()
    path = f"/dev/shm/sem.planted-{uuid.uuid4().hex}"
    subprocess.run([sys.executable, "-c", HOLDER, path, "1.0"], check=True)
    try:
        assert leftovers.new_since(before, settle=0.5) == {"shared files": [path]}
    finally:
        os.unlink(path)


def test_shared_memory_another_program_left_is_not_counted():
    before = leftovers.snapshot()
    path = f"/dev/shm/mpich_shm_planted_{uuid.uuid4().hex}"
    os.close(os.open(path, os.O_CREAT | os.O_EXCL | os.O_RDWR, 0o600))   # never held by the run
    try:
        assert leftovers.new_since(before, settle=0.5) == {}
    finally:
        os.unlink(path)


DAEMON = textwrap.dedent('''
    import mmap, os, sys, time
    path = sys.argv[1]
    if os.fork():
        os._exit(0)                     # the daemon is nobody's child in the test's process tree
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    os.ftruncate(fd, 4096)
    memory = mmap.mmap(fd, 4096)
    os.close(fd)
    print(os.getpid(), flush=True)
    sys.stdout.close()
    time.sleep(120)
''')


def test_shared_memory_in_use_by_another_program_is_not_counted():
    before = leftovers.snapshot()
    path = f"/dev/shm/mpich_shm_planted_{uuid.uuid4().hex}"
    starter = subprocess.Popen([sys.executable, "-c", DAEMON, path], stdout=subprocess.PIPE, text=True)
    daemon = int(starter.stdout.readline())
    starter.wait()
    try:
        assert leftovers.held_by_others({path}) == {path}
        assert leftovers.new_since(before) == {}
    finally:
        os.kill(daemon, signal.SIGKILL)
        os.unlink(path)


def test_a_child_process_left_running_is_caught():
    before = leftovers.snapshot()
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        assert leftovers.new_since(before) == {"processes": [child.pid]}
    finally:
        child.kill()
        child.wait()
    assert leftovers.new_since(before) == {}
