"""Every example runs and passes its own check against a serial answer."""

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

# These tests start programs of their own; the fork leg of the suite runs them.
pytestmark = pytest.mark.mpi_skip

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
RUNS = [
    ("hello.py", [], 1), ("hello.py", [], 4),
    ("inner_product.py", ["100000"], 1), ("inner_product.py", ["100000"], 3),
    ("stencil.py", ["40", "30"], 1), ("stencil.py", ["40", "30"], 3), ("stencil.py", ["5", "10"], 4),
    ("stencil_checkpoint.py", ["40", "30", "7"], 3), ("stencil_checkpoint.py", ["5", "10", "3"], 4),
    ("sample_sort.py", ["100000"], 1), ("sample_sort.py", ["100000"], 3), ("sample_sort.py", ["7"], 4), ("sample_sort.py", ["0"], 3),
    ("sieve.py", ["10000"], 1), ("sieve.py", ["10000"], 3), ("sieve.py", ["2"], 4),
    ("lu.py", ["30"], 1), ("lu.py", ["30"], 3), ("lu.py", ["3"], 4),
    ("lu2d.py", ["30"], 1), ("lu2d.py", ["30"], 2), ("lu2d.py", ["30"], 4), ("lu2d.py", ["30"], 6),
    ("lu2d.py", ["7", "1"], 6), ("lu2d.py", ["3"], 4),
    ("fft.py", ["8"], 1), ("fft.py", ["8"], 3), ("fft.py", ["3"], 4),
    ("spmv.py", ["2000", "10"], 1), ("spmv.py", ["2000", "10"], 3), ("spmv.py", ["5", "3"], 4),
    ("pagerank.py", ["2000", "10"], 1), ("pagerank.py", ["2000", "10"], 3), ("pagerank.py", ["3", "5"], 4),
    ("components.py", ["2000"], 1), ("components.py", ["2000"], 3), ("components.py", ["5"], 4),
    ("power_couples.py", ["2000", "12"], 1), ("power_couples.py", ["2000", "12"], 3),
    ("power_couples.py", ["2", "2"], 4),
    ("cpi_accumulate.py", ["100000"], 1), ("cpi_accumulate.py", ["100000"], 3), ("cpi_accumulate.py", ["2"], 4),
    ("stencil2d.py", ["40", "30"], 1), ("stencil2d.py", ["41", "30"], 4), ("stencil2d.py", ["3", "5"], 4),
    ("stencil2d.py", ["23", "10"], 3),
    ("matmul.py", ["60"], 1), ("matmul.py", ["61"], 4), ("matmul.py", ["45"], 3), ("matmul.py", ["1"], 4),
    ("debug_me.py", ["--fixed"], 1), ("debug_me.py", ["--fixed"], 4), ("debug_me.py", ["500", "--fixed"], 3),
]


def run_example(name, args, nprocs):
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    env["BSP_NPROCS"] = str(nprocs)
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("name, args, nprocs", RUNS, ids=[f"{n}-nprocs={p}" for n, _, p in RUNS])
def test_example_passes_its_check(name, args, nprocs):
    done = run_example(name, args, nprocs)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("check against the serial answer: OK")
    if name == "lu2d.py":           # three supersteps a stage and the gather
        assert f", {3 * int(args[0]) + 1} supersteps" in done.stdout


def test_hello_output():
    done = run_example("hello.py", [], 3)
    assert done.stdout.splitlines()[:3] == [
        "rank 0 heard: hello from 1, hello from 2",
        "rank 1 heard: hello from 0, hello from 2",
        "rank 2 heard: hello from 0, hello from 1",
    ]


def test_the_readme_first_program_runs_as_shown():
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n", 1)[1].split("```", 1)[0]
    code += "\nassert results == [6, 6, 6, 6], results\n"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert sorted(done.stdout.splitlines()) == sorted(
        f"rank {pid} got {((pid - 1) % 4) * 10} from rank {(pid - 1) % 4}" for pid in range(4))


def test_the_readme_data_objects_example_runs():
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = readme.split("```python\n")[2].split("```", 1)[0]
    code += "\nresults = bsp.run(program, nprocs=3)\nassert results == [2997000.0] * 3, results\n"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert lines[0] == "0 [0. 0. 0.] [0. 0. 1. 2. 3. 0. 0. 0. 0. 0.]"      # rank 1: the puts landed
    assert len(lines) == 3


def check_bspbench_output(text, nprocs, maxh):
    """bspbench's report: the rates, one time per h, two fits, the bottom line."""
    lines = text.splitlines()
    assert lines[0] == f"Using {nprocs} processors"
    rates = [line for line in lines if line.startswith("n= ")]
    assert [int(line.split()[1]) for line in rates] == [2 ** k for k in range(11)]
    times = [line for line in lines if line.startswith("Time of ")]
    assert [int(line.split()[2].split("-")[0]) for line in times] == list(range(maxh + 1))
    assert all(float(line.split("= ")[1].split()[0]) > 0 for line in times)
    fits = [line for line in lines if line.startswith("Range h=")]
    assert len(fits) == 2 and all(" us/word, l= " in line for line in fits)
    assert lines[-2] == "The bottom line for this BSP computer is:"
    p, r, g, l = (part.split("= ")[1] for part in lines[-1].split(" (")[0].split(", "))
    assert int(p) == nprocs and float(r.split()[0]) > 0
    assert all(np.isfinite(float(value)) for value in (g, l))


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_bspbench_reports_g_and_l_from_element_puts(nprocs):
    done = run_example("bspbench.py", ["8", "3"], nprocs)
    assert done.returncode == 0, done.stdout + done.stderr
    check_bspbench_output(done.stdout, nprocs, 8)


def test_the_readme_grid_example_runs():
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = next(block.split("```", 1)[0] for block in readme.split("```python\n") if "a @ a.transpose()" in block)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    i, j = np.indices((6, 8))
    a = 10.0 * i + j
    a[::2, :4] *= -1
    assert done.stdout.strip() == str(((2, 2), (4, 1), (5, 6), (6, 6), float((a @ a.T).sum())))


def test_the_readme_groups_example_runs():
    readme = (EXAMPLES.parent / "README.md").read_text()
    code = next(block.split("```", 1)[0] for block in readme.split("```python\n") if "world.grid((2, 3))" in block)
    code += "    return pivot, total, evens\n\nprint(bsp.run(program, nprocs=6))\n"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", "import bsp\n" + code], capture_output=True, text=True,
                          env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == str([(0, 3, [0, 2, 4]), (0, 5, [1, 3, 5]), (0, 7, [0, 2, 4]),
                                       (4, 3, [1, 3, 5]), (4, 5, [0, 2, 4]), (4, 7, [1, 3, 5])])


def test_debug_me_fails_on_rank_2_of_4_without_the_fix():
    done = run_example("debug_me.py", [], 4)
    assert done.returncode == 1
    assert "RemoteError: rank 2 raised IndexError: index 250 is out of bounds for axis 0 with size 234" in done.stderr
    assert "check against the serial answer" not in done.stdout


def test_the_readme_debugging_session_finds_the_bug_as_shown(tmp_path):
    """Record debug_me.py on 4 ranks, replay ranks 2 and 1 under pdb with the
    README's commands, and see what the README shows."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    bsp_command = str(Path(sys.executable).parent / "bsp")
    record = tmp_path / "run.bsprec"
    done = subprocess.run([bsp_command, "run", "-n", "4", "--record", str(record), str(EXAMPLES / "debug_me.py")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert "rank 2 raised IndexError" in done.stderr and record.exists()

    def replay(rank, commands):
        return subprocess.run([bsp_command, "replay", str(record), "--rank", str(rank), "--pdb"],
                              input="\n".join(commands) + "\n", capture_output=True, text=True, env=env, timeout=300)

    rank2 = replay(2, ["continue", "p top, width, first", "p source, reading", "quit"])
    assert "pybsp: the replayed program raised IndexError: index 250 is out of bounds" in rank2.stderr
    assert "-> counts[reading - first] += 1\n(Pdb) (932, 234, 468)\n(Pdb) (1, np.int64(718))" in rank2.stdout
    rank1 = replay(1, ["until 43", "p top, width, world.pid * width", "quit"])
    assert "-> world.sync()\n(Pdb) (988, 248, 248)" in rank1.stdout
