"""The MPI backend seen from outside: scripts under mpiexec print what they
print under the fork backend, a failing job ends promptly and non-zero, and
`bsp run --mpi` and `bsp doctor` find the launcher of mpi4py's MPI.

These tests start MPI jobs of their own, so they run in the fork leg of the
suite (plain pytest), and never import mpi4py into the test process (MPI in
a process that forks is asking for trouble)."""

import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi_skip

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"
# bspbench prints timings, which differ from run to run: test_examples checks its report.
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py") if path.name != "bspbench.py")

if not MPIEXEC.exists():
    pytest.skip("no mpiexec beside this Python: scripts/setup test mpich installs one", allow_module_level=True)


def clean_env(**extra):
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    env.update(extra)
    return env


def run(command, timeout=300, **env):
    return subprocess.run([str(part) for part in command], capture_output=True, text=True,
                          timeout=timeout, env=clean_env(**env), cwd=ROOT)


def run_together(*commands, timeout=300):
    """`run` each of `commands` (a command, or a command and its extra
    environment), all at once: most of a small job's time is its processes
    starting, which overlap; their results, in order."""
    started = []
    for command in commands:
        command, env = command if isinstance(command, tuple) else (command, {})
        started.append((command, subprocess.Popen([str(part) for part in command], stdout=subprocess.PIPE,
                                                  stderr=subprocess.PIPE, text=True, env=clean_env(**env),
                                                  cwd=ROOT)))
    done = []
    for command, process in started:
        with process:
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                process.kill()
                raise
        done.append(subprocess.CompletedProcess(command, process.returncode, stdout, stderr))
    return done


# Small sizes, so that every example runs in well under a second.  A new
# example is picked up by itself, with its default arguments unless named here.
# (lu.py's check uses BLAS, whose last bits depend on its number of threads;
# at sizes where BLAS uses threads, MPI rank 0 once printed another residual:
# test_backends_agree checks the thread counts directly, cheaper than lu.py 300.)
ARGUMENTS = {"inner_product.py": ["200000"], "stencil.py": ["60", "40"], "sample_sort.py": ["200000"],
             "sieve.py": ["100000"], "lu.py": ["40"], "fft.py": ["10"], "spmv.py": ["5000", "10"],
             "pagerank.py": ["5000", "10"], "components.py": ["5000"], "power_couples.py": ["5000", "12"],
             "cpi_accumulate.py": ["100000"],
             "stencil2d.py": ["60", "40"], "matmul.py": ["60"],
             "debug_me.py": ["--fixed"], "kmeans.py": ["3000", "4"]}


# Examples that cannot run unattended the three ways, with the reason.
CANNOT: dict[str, str] = {}


@pytest.mark.parametrize("example", EXAMPLES)
@pytest.mark.parametrize("nprocs", [2, 3])
def test_an_example_prints_the_same_under_mpiexec_bsp_run_and_python(example, nprocs):
    """At 2 ranks, all four ways; at 3 (a rank with no partner, uneven
    blocks), the fork backend and mpiexec: the launchers do nothing that
    depends on the program's nprocs, and an MPI job of 3 ranks on this
    machine's 2 cores is the suite's costliest kind of process."""
    if example in CANNOT:
        pytest.skip(CANNOT[example])
    script = [ROOT / "examples" / example, *ARGUMENTS.get(example, [])]
    commands = [([sys.executable, *script], {"BSP_NPROCS": str(nprocs)}),
                [MPIEXEC, "-n", nprocs, sys.executable, *script]]
    if nprocs == 2:
        commands += [[BIN / "bsp", "run", "-n", nprocs, *script], [BIN / "bsp", "run", "--mpi", "-n", nprocs, *script]]
    fork, mpi, *launched = run_together(*commands)
    assert fork.returncode == 0, fork.stderr
    assert mpi.returncode == 0, mpi.stderr
    assert mpi.stdout == fork.stdout
    for bsp_run in launched:
        assert bsp_run.returncode == 0, bsp_run.stderr
        assert bsp_run.stdout == fork.stdout


def test_bspbench_runs_under_mpiexec():
    from bspbench_report import check_bspbench_output
    done = run([MPIEXEC, "-n", 2, sys.executable, ROOT / "examples" / "bspbench.py", "8", "3"])
    assert done.returncode == 0, done.stderr
    check_bspbench_output(done.stdout, 2, 8)


SCRIPT = textwrap.dedent('''
    import sys
    import bsp

    def square_sum(world, scale):
        return world.allreduce((world.pid * scale) ** 2)

    def make_closure(offset):
        def program(world):
            return world.allgather(world.pid + offset)
        return program

    class Counter:
        def __init__(self, start):
            self.value = start

    def uses_a_class(world):
        counter = Counter(world.pid)
        world.send(counter, 0)
        world.sync()
        return sorted(c.value for _, c in world.messages())

    if __name__ == "__main__":
        print(bsp.run(square_sum, 2))
        print(bsp.run(lambda world: world.pid * 10))
        print(bsp.run(make_closure(100)))
        print(bsp.run(uses_a_class)[0])
        print(bsp.run(square_sum, 1, nprocs=2))
        if sys.argv[1:] == ["fail"]:
            def later(world):
                if world.pid == 1:
                    raise ValueError("rank one fails")
                world.sync()
            bsp.run(lambda world: 1 / 0 if world.pid == 1 else world.sync())
        print("after the runs", flush=True)
''')


@pytest.fixture
def script(tmp_path):
    path = tmp_path / "script.py"
    path.write_text(SCRIPT)
    return path


def test_several_runs_lambdas_closures_and_main_classes_under_mpiexec(script):
    done = run([MPIEXEC, "-n", 3, sys.executable, script])
    assert done.returncode == 0, done.stderr
    assert done.stdout.splitlines() == [
        "[20, 20, 20]", "[0, 10, 20]", "[[100, 101, 102], [100, 101, 102], [100, 101, 102]]",
        "[0, 1, 2]", "[1, 1]", "after the runs"]
    fork = run([sys.executable, script], BSP_NPROCS="3")
    assert fork.stdout == done.stdout


def test_a_failing_job_ends_promptly_nonzero_with_one_traceback(script):
    done = run([MPIEXEC, "-n", 3, sys.executable, script, "fail"], timeout=120)
    assert done.returncode != 0
    assert "after the runs" not in done.stdout
    assert done.stderr.count("bsp.errors.RemoteError: rank 1 raised ZeroDivisionError: division by zero") == 1
    assert done.stderr.count("--- traceback of rank 1 ---") == 1


ONE_MAIN = textwrap.dedent('''
    import threading
    import bsp

    _world = None

    def bind(world):
        global _world
        _world = world

    def pid():
        return _world.pid

    def shared_global(world):
        bind(world)
        return pid()

    LOCK = threading.Lock()         # cannot be pickled: each rank keeps its own

    print(bsp.run(shared_global))
    OFFSET = 10
    def late(world):
        with LOCK:
            return world.pid + OFFSET
    print(bsp.run(late))
    class Late:
        def __init__(self, value):
            self.value = value
        @property
        def doubled(self):
            return 2 * self.value + OFFSET
    print(bsp.run(lambda world, thing: (world.pid, thing.doubled, isinstance(thing, Late)), Late(1)))
    OFFSET = 20
    counts = []
    def count(world):
        counts.append(world.pid)
        return len(counts), type(_world).__name__
    print(bsp.run(count), bsp.run(count), counts)
    print(bsp.run(lambda world: Late(world.pid))[1].doubled, isinstance(bsp.run(lambda world: Late(0))[0], Late))
''')


def test_every_rank_sees_one_main_namespace_with_late_names_and_shared_globals(tmp_path):
    """Under mpiexec and bsp run --mpi, as on fork: a global set by one
    function is read by another, names defined after the first run (a
    global, a function, a class) are there, and a run's changes to module
    globals stay in the run (rank 0's globals included)."""
    path = tmp_path / "one_main.py"
    path.write_text(ONE_MAIN)
    fork = run([sys.executable, path], BSP_NPROCS="2")
    assert fork.returncode == 0, fork.stderr
    assert fork.stdout.splitlines() == [
        "[0, 1]", "[10, 11]", "[(0, 12, True), (1, 12, True)]",
        "[(1, 'NoneType'), (1, 'NoneType')] [(1, 'NoneType'), (1, 'NoneType')] []", "22 True"]
    mpi = run([MPIEXEC, "-n", 2, sys.executable, path], PYTHONHASHSEED="0")
    assert mpi.returncode == 0, mpi.stderr
    assert mpi.stdout == fork.stdout
    assert run([BIN / "bsp", "run", "--mpi", "-n", 2, path]).stdout == fork.stdout


def test_a_launcher_of_another_mpi_is_named_at_run_time(tmp_path):
    path = tmp_path / "one.py"
    path.write_text("import bsp\nbsp.run(lambda world: world.pid)\n")
    done = run([sys.executable, path], OMPI_COMM_WORLD_SIZE="2")
    assert done.returncode != 0
    assert "every rank believes it is rank 0 of 1" in done.stderr


def test_doctor_finds_the_launcher_of_mpi4pys_mpi():
    done = run([BIN / "bsp", "doctor"], PYTHONHASHSEED="")
    assert done.returncode == 0, done.stdout + done.stderr
    assert f"launcher: {MPIEXEC}" in done.stdout
    assert "check: OK, a job of 2 processes sees ranks 0 and 1 of 2" in done.stdout
    assert "hash seed: PYTHONHASHSEED is not set: bsp run --mpi gives each job one seed" in done.stdout
    assert "hash seed: PYTHONHASHSEED=0: every rank" in run([BIN / "bsp", "doctor"], PYTHONHASHSEED="0").stdout


def test_doctor_detects_a_launcher_of_another_mpi(tmp_path):
    """A launcher of another MPI starts the processes without the start-up
    information mpi4py's MPI reads, so each one runs as a singleton."""
    fake = tmp_path / "mpiexec"
    fake.write_text(textwrap.dedent('''\
        #!/bin/sh
        [ "$1" = "--version" ] && { echo "Some Other MPI launcher 1.0"; exit 0; }
        shift 2  # -n N
        "$@" & "$@"; wait
    '''))
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    done = run([BIN / "bsp", "doctor", "--launcher", fake])
    assert done.returncode == 1
    assert "check: MISMATCH" in done.stdout and "every one believes it is rank 0 of 1" in done.stdout
    assert "fix:" in done.stdout
