"""bsp.run and the `bsp run` command."""

import inspect
import os
import subprocess
import sys
import textwrap

import pytest

import bsp
from bsp.launch.cores import usable_cores
from bsp.testing import require_nprocs


def describe(world, *args, **kwargs):
    return (world.pid, world.nprocs, args, kwargs)


def test_results_come_back_in_pid_order_with_args_and_kwargs():
    require_nprocs(3)
    assert bsp.run(describe, 1, "two", nprocs=3, key="value") == [
        (pid, 3, (1, "two"), {"key": "value"}) for pid in range(3)]


def scribble(world, arguments):
    arguments["seen by"].append(world.pid)
    return sorted(arguments["seen by"])


def test_every_rank_runs_on_a_copy_of_the_arguments():
    # rank 0 included, on every backend: its changes stay in the run
    require_nprocs(2)
    arguments = {"seen by": []}
    assert bsp.run(scribble, arguments, nprocs=2) == [[0], [1]]
    assert arguments == {"seen by": []}


def test_run_twice_in_one_process():
    require_nprocs(3)
    assert bsp.run(describe, nprocs=2) == [(0, 2, (), {}), (1, 2, (), {})]
    assert bsp.run(describe, nprocs=3)[2] == (2, 3, (), {})


@pytest.mark.mpi_skip
def test_default_nprocs_is_the_number_of_usable_cores(monkeypatch):
    monkeypatch.delenv("BSP_NPROCS", raising=False)
    assert len(bsp.run(describe, backend="fork")) == usable_cores()


@pytest.mark.mpi_skip
def test_bsp_nprocs_sets_the_default(monkeypatch):
    monkeypatch.setenv("BSP_NPROCS", "3")
    assert len(bsp.run(describe)) == 3
    assert len(bsp.run(describe, nprocs=2)) == 2     # an explicit nprocs wins


@pytest.mark.parametrize("nprocs, error, message", [
    (0, ValueError, "nprocs must be at least 1, got 0"),
    (-1, ValueError, "nprocs must be at least 1, got -1"),
    ("4", TypeError, "nprocs must be a positive integer, not 'str'"),
    (2.5, TypeError, "nprocs must be a positive integer, not 'float'"),
])
def test_bad_nprocs(nprocs, error, message):
    with pytest.raises(error, match=message):
        bsp.run(describe, nprocs=nprocs)


def scaled(world, n, factor=1):
    return n * factor * world.pid


@pytest.mark.mpi_skip
@pytest.mark.parametrize("call, message", [
    (lambda: bsp.run(scaled, 3, nproc=4), "did you mean nprocs?"),
    (lambda: bsp.run(scaled, 3, nprocs=2, backend="fork", sync_timout=5), "did you mean sync_timeout?"),
    (lambda: bsp.run(scaled, 3, nprocs=2, backend="fork", facter=5), "did you mean factor?"),
    (lambda: bsp.run(lambda n: n, 3, nprocs=2), "a program's first parameter is the World"),
    (lambda: bsp.run(lambda: 0, nprocs=2), "a program's first parameter is the World"),
    (lambda: bsp.run(scaled, nprocs=2), "missing a required argument: 'n'"),
])
def test_a_call_the_program_cannot_take_fails_before_any_rank_starts(monkeypatch, call, message):
    def no_fork():
        raise AssertionError("a rank was forked")
    monkeypatch.setattr(os, "fork", no_fork)
    with pytest.raises(TypeError) as raised:
        call()
    assert message in str(raised.value)


def test_a_program_whose_signature_python_cannot_tell_runs_unchecked():
    with pytest.raises(ValueError):
        inspect.signature(getattr)
    assert bsp.run(getattr, "pid", nprocs=2) == [0, 1]


@pytest.mark.mpi_skip
@pytest.mark.parametrize("value", ["zero", "0"])
def test_bad_bsp_nprocs(monkeypatch, value):
    monkeypatch.setenv("BSP_NPROCS", value)
    with pytest.raises(ValueError, match="BSP_NPROCS must be"):
        bsp.run(describe)


@pytest.mark.mpi_skip
def test_bad_backend(monkeypatch):
    with pytest.raises(ValueError, match="backend must be one of 'fork', 'mpi', not 'threads'"):
        bsp.run(describe, backend="threads")
    monkeypatch.setenv("BSP_BACKEND", "nonsense")
    with pytest.raises(ValueError, match="BSP_BACKEND must be one of"):
        bsp.run(describe)


def test_a_program_that_is_not_callable():
    with pytest.raises(TypeError, match="the program must be callable, not 'int'"):
        bsp.run(42, nprocs=1)


def test_runs_cannot_be_nested():
    def outer(world):
        return bsp.run(describe, nprocs=1)

    with pytest.raises(bsp.RemoteError, match="runs cannot be nested"):
        bsp.run(outer, nprocs=2)


SCRIPT = textwrap.dedent("""
    import sys
    import bsp

    def program(world, word):
        world.send(world.pid, 0)
        world.sync()
        return (word, len(world.messages()))

    if __name__ == "__main__":
        print(bsp.run(program, sys.argv[1]))
""")


@pytest.mark.mpi_skip
@pytest.mark.parametrize("command", [["bsp"], [sys.executable, "-m", "bsp"]])
def test_bsp_run_gives_the_script_n_ranks(tmp_path, command):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    if command == ["bsp"]:
        command = [os.path.join(os.path.dirname(sys.executable), "bsp")]
    done = subprocess.run([*command, "run", "-n", "3", str(script), "hello"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[('hello', 3), ('hello', 0), ('hello', 0)]\n"


@pytest.mark.mpi_skip
def test_bsp_run_rejects_a_bad_n(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    done = subprocess.run([sys.executable, "-m", "bsp", "run", "-n", "0", str(script)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "-n must be at least 1, got 0" in done.stderr
