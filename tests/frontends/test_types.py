"""What mypy --strict sees of the public API in a user's program: bsp.run
returns a list of the program's return type and checks the arguments
against the program's parameters.  (scripts/test checks the package itself
with mypy --strict.)"""

import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

pytest.importorskip("mypy")
pytestmark = pytest.mark.mpi_skip       # nothing here runs ranks

ROOT = Path(__file__).resolve().parents[2]

USER_PROGRAM = textwrap.dedent('''\
    import bsp

    def program(world: bsp.World, n: int) -> int:
        return n * world.pid

    def scaled(world: bsp.World, n: int, *, scale: float = 1.0) -> float:
        return n * scale

    def without_world(n: int) -> int:
        return n

    reveal_type(bsp.run(program, 3, nprocs=2))                  # line 12
    reveal_type(bsp.run(scaled, 3, scale=2.0))                  # line 13
    reveal_type(bsp.run(lambda world: world.pid, nprocs=2, backend="fork"))   # line 14
    bsp.run(program, "x", nprocz=2)                             # line 15
    bsp.run(program, 3, nproc=4)                                # line 16
    bsp.run(program, "x")                                       # line 17
    bsp.run(without_world, 3)                                   # line 18
    bsp.run(scaled, 3, scale="big")                             # line 19
    bsp.run(program, 3, nprocs="4")                             # line 20
''')


@pytest.fixture(scope="module")
def mypy_report(tmp_path_factory):
    folder = tmp_path_factory.mktemp("typed")
    (folder / "user.py").write_text(USER_PROGRAM)
    env = dict(os.environ, MYPYPATH=str(ROOT))
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--cache-dir", str(ROOT / ".venv" / "mypy-cache"), "user.py"],
                          cwd=folder, env=env, capture_output=True, text=True, timeout=300)
    report: dict[int, list[str]] = {}
    for line in done.stdout.splitlines():
        found = re.match(r"user\.py:(\d+): (error|note): (.*)", line)
        if found:
            report.setdefault(int(found[1]), []).append(found[3])
    return report


@pytest.mark.parametrize("line, revealed", [(12, "list[int]"), (13, "list[float]"), (14, "list[int]")])
def test_run_returns_a_list_of_the_programs_return_type(mypy_report, line, revealed):
    assert f'Revealed type is "{revealed}"' in mypy_report.get(line, []), mypy_report


@pytest.mark.parametrize("line, error", [
    (15, 'Unexpected keyword argument "nprocz" for "run"'),
    (16, 'Unexpected keyword argument "nproc" for "run"'),
    (17, 'incompatible type "Callable[[World, int], int]"; expected "Callable[[World, str], int]"'),
    (18, 'incompatible type "Callable[[int], int]"; expected "Callable[[World, int], int]"'),
    (19, 'Argument "scale" to "run" has incompatible type "str"; expected "float"'),
    (20, 'Unexpected keyword argument "nprocs" for "run"'),  # mypy names the overload's failure so
])
def test_mistakes_in_a_run_call_are_type_errors(mypy_report, line, error):
    assert any(error in message for message in mypy_report.get(line, [])), mypy_report


def test_the_package_says_it_is_typed():
    assert (ROOT / "bsp" / "py.typed").is_file() and (ROOT / "mpi_backend" / "py.typed").is_file()


def test_mypy_sees_the_installed_package_from_outside_the_checkout(tmp_path):
    """scripts/setup installs pybsp editable in the compat mode (a .pth
    naming the checkout), which type checkers follow; the import hook of
    the default mode is invisible to them ("Cannot find implementation or
    library stub for module named bsp")."""
    from importlib import metadata
    try:
        metadata.distribution("pybsp")
    except metadata.PackageNotFoundError:
        pytest.skip("pybsp is not installed in this Python (scripts/setup installs it)")
    (tmp_path / "outside.py").write_text(textwrap.dedent('''\
        import bsp

        def program(world: bsp.World) -> float:
            return world.pid / 2

        results: list[float] = bsp.run(program)
        wrong: list[str] = bsp.run(program)
    '''))
    env = {key: value for key, value in os.environ.items() if key not in ("MYPYPATH", "PYTHONPATH")}
    done = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--cache-dir",
                           str(ROOT / ".venv" / "mypy-cache"), "outside.py"],
                          cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.stdout.splitlines() == [
        'outside.py:7: error: Argument 1 to "run" has incompatible type "Callable[[World], float]"; '
        'expected "Callable[[World], str]"  [arg-type]', "Found 1 error in 1 file (checked 1 source file)"]
