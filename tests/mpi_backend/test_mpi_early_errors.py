"""Under MPI, rank 0 alone reads the script past its first bsp.run: an
error that stops it before a run starts must end the whole job, promptly,
and a process that a rank starts must be refused the job's runs.  These
tests start MPI jobs of their own (see test_mpi.py)."""

import re
import subprocess
import sys
import textwrap

import pytest

from test_mpi import BIN, MPIEXEC, run

pytestmark = pytest.mark.mpi_skip

EARLY = textwrap.dedent('''
    import fcntl, os, sys
    import bsp

    def program(world):
        return world.pid

    kind, folder = sys.argv[1], sys.argv[2]
    if kind == "keyword":
        bsp.run(program, nproc=2)
    elif kind == "argument":
        bsp.run(program, sync_timeout=-1)
    elif kind == "in use":
        os.makedirs(folder, exist_ok=True)
        held = os.open(folder, os.O_RDONLY)
        try:
            fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pass        # another rank holds it: in use all the same
        bsp.run(program, checkpoint=folder)
    elif kind == "damaged LATEST":
        os.makedirs(folder, mode=0o700, exist_ok=True)
        with open(os.path.join(folder, "LATEST"), "w") as latest:
            latest.write("{damaged")
        bsp.run(program, checkpoint=folder)
    elif kind == "caught":
        try:
            bsp.run(program, nproc=2)
        except TypeError as error:
            print("caught:", error)
        print(bsp.run(program))
''')

ERRORS = {"keyword": "TypeError: bsp.run got the keyword argument 'nproc', which neither bsp.run nor "
                     "program(world) takes: did you mean nprocs?",
          "argument": "ValueError: sync_timeout must be 0 (no timeout) or a positive number of seconds, not -1",
          "in use": "CheckpointError: checkpoint directory '{folder}' is in use by another run",
          "damaged LATEST": "CheckpointError: {folder}/LATEST is damaged"}


@pytest.mark.parametrize("launcher", ["mpiexec", "bsp run --mpi"])
@pytest.mark.parametrize("kind", list(ERRORS))
def test_an_error_before_the_first_run_ends_the_job_with_it(tmp_path, launcher, kind):
    path, folder = tmp_path / "early.py", tmp_path / "checkpoints"
    path.write_text(EARLY)
    start = [MPIEXEC, "-n", 2, sys.executable] if launcher == "mpiexec" else [BIN / "bsp", "run", "--mpi", "-n", 2]
    try:
        done = run([*start, path, kind, folder], timeout=60, PYTHONHASHSEED="0")
    except subprocess.TimeoutExpired:
        pytest.fail(f"{launcher}: the job still ran 60 s after rank 0 raised ({kind})")
    assert done.returncode != 0
    assert done.stderr.count(ERRORS[kind].format(folder=folder)) == 1, done.stderr


def test_a_caught_error_before_the_first_run_leaves_the_job_able_to_run(tmp_path):
    path = tmp_path / "early.py"
    path.write_text(EARLY)
    done = run([MPIEXEC, "-n", 2, sys.executable, path, "caught", tmp_path], timeout=60, PYTHONHASHSEED="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines()[1:] == ["[0, 1]"]


CHILDREN = textwrap.dedent('''
    import multiprocessing, os
    import bsp

    def program(world):
        return world.pid

    def child(queue):
        try:
            queue.put(("returned", bsp.run(program)))
        except Exception as error:
            queue.put((type(error).__name__, str(error)))

    if __name__ == "__main__":
        print(bsp.run(program))
        queue = multiprocessing.get_context("fork").SimpleQueue()
        process = multiprocessing.get_context("fork").Process(target=child, args=(queue,))
        process.start()
        print(*queue.get(), sep=": ")
        process.join()
        pid = os.fork()
        if pid == 0:
            child(queue)
            os._exit(0)
        print(*queue.get(), sep=": ")
        os.waitpid(pid, 0)
        print(bsp.run(program))
''')


def test_bsp_run_in_a_child_process_of_rank_0_is_refused_in_the_child(tmp_path):
    path = tmp_path / "children.py"
    path.write_text(CHILDREN)
    done = run([MPIEXEC, "-n", 2, sys.executable, path], timeout=60, PYTHONHASHSEED="0")
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0] == lines[-1] == "[0, 1]" and len(lines) == 4
    refusal = r"BSPError: bsp\.run cannot use the MPI job in this process \(pid \d+, {}\): only the processes"
    assert re.match(refusal.format(r"multiprocessing started from pid \d+"), lines[1])
    assert re.match(refusal.format(r"forked from pid \d+, a process of the job"), lines[2])
