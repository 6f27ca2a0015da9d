"""A script prints the same under `python`, `bsp run -n` and `mpiexec`, in
the cases where it once did not: a function defined after the first bsp.run
that uses globals defined after it, a word count split by hash(), and
BLAS after bsp.run (whose results can depend on the number of threads).

These start MPI jobs of their own, from the fork leg of the suite."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi_skip

BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"
if not MPIEXEC.exists():
    pytest.skip("no mpiexec beside this Python: scripts/setup test mpich installs one", allow_module_level=True)

SCRIPT = textwrap.dedent('''
    import bsp
    from threadpoolctl import threadpool_info

    def first(world):
        return world.pid

    print(bsp.run(first))

    SCALE = 3                                   # defined after the first bsp.run

    def later(world):
        return world.pid * SCALE + OFFSET

    OFFSET = 100
    print(bsp.run(lambda world: world.pid * SCALE))
    print(bsp.run(later))

    WORDS = ("the quick brown fox jumps over the lazy dog " * 7).split()

    def count(world):
        return sum(1 for word in WORDS if hash(word) % world.nprocs == world.pid)

    print(sum(bsp.run(count)), "words")
    print("threads after the runs:", sorted((pool["internal_api"], pool["num_threads"]) for pool in threadpool_info()))
''')


def run(*command, **env):
    environment = {key: value for key, value in os.environ.items()
                   if not key.startswith("BSP_") and key != "PYTHONHASHSEED"}
    environment.update(env)
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300,
                          env=environment)


@pytest.fixture(scope="module")
def script(tmp_path_factory):
    path = tmp_path_factory.mktemp("agree") / "script.py"
    path.write_text(SCRIPT)
    return path


@pytest.fixture(scope="module")
def under_python(script):
    done = run(sys.executable, script, BSP_NPROCS="2")
    assert done.returncode == 0, done.stderr
    assert "63 words" in done.stdout
    return done.stdout


def test_bsp_run_mpi_prints_what_python_prints(script, under_python):
    done = run(BIN / "bsp", "run", "--mpi", "-n", "2", script)
    assert done.returncode == 0, done.stderr
    assert done.stdout == under_python
    assert "hash strings differently" not in done.stderr


def test_mpiexec_with_one_hash_seed_prints_what_python_prints(script, under_python):
    done = run(MPIEXEC, "-n", "2", sys.executable, script, PYTHONHASHSEED="0")
    assert done.returncode == 0, done.stderr
    assert done.stdout == under_python
    assert "hash strings differently" not in done.stderr


def test_mpiexec_without_one_hash_seed_warns(script):
    done = run(MPIEXEC, "-n", "2", sys.executable, script)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("pybsp: warning: the ranks of this MPI job hash strings differently") == 1
