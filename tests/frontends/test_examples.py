"""Every example runs and passes its own check against a serial answer; the
guide's programs run as shown; and what the guide says an example's
supersteps are (the gallery's calls, the profile tables' call sites) is what
a traced run of it makes."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from bspbench_report import check_bspbench_output

# These tests start programs of their own; the fork leg of the suite runs them.
pytestmark = pytest.mark.mpi_skip

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"
GUIDE = ROOT / "docs" / "guide"
GALLERY = GUIDE / "getting-started.md"
PROFILES = GUIDE / "performance.md"
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
    ("kmeans.py", ["3000", "4"], 1), ("kmeans.py", ["3000", "4"], 3), ("kmeans.py", ["7", "2"], 4),
    ("kmeans.py", ["2000", "3"], 1), ("kmeans.py", ["2000", "3"], 3), ("kmeans.py", ["7", "2"], 4),
    ("debug_me.py", ["--fixed"], 1), ("debug_me.py", ["--fixed"], 4), ("debug_me.py", ["500", "--fixed"], 3),
]

# Each example's first run on several ranks, which is traced and held to what the guide says
# (edge cases, such as a sieve up to 2, may make fewer kinds of superstep).
TYPICAL = {}
for _name, _args, _nprocs in RUNS:
    if _nprocs > 1:
        TYPICAL.setdefault(_name, (_args, _nprocs))


def run_example(name, args, nprocs, **variables):
    """Run examples/NAME with `nprocs` ranks; `variables` set BSP_* variables
    (trace=path: BSP_TRACE)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    env["BSP_NPROCS"] = str(nprocs)
    env.update({f"BSP_{key.upper()}": str(value) for key, value in variables.items()})
    return subprocess.run([sys.executable, str(EXAMPLES / name), *args],
                          capture_output=True, text=True, env=env, timeout=300)


@pytest.mark.parametrize("name, args, nprocs", RUNS, ids=[f"{n}-nprocs={p}" for n, _, p in RUNS])
def test_example_passes_its_check(name, args, nprocs, tmp_path):
    traced = TYPICAL[name] == (args, nprocs)
    variables = {"trace": tmp_path / "trace.json"} if traced else {}
    if traced and name == "stencil_checkpoint.py":      # so that world.restore reads a directory
        variables["checkpoint"] = tmp_path / "checkpoints"
    done = run_example(name, args, nprocs, **variables)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("check against the serial answer: OK")
    if name == "lu2d.py":           # three supersteps a stage and the gather
        assert f", {3 * int(args[0]) + 1} supersteps" in done.stdout
    if traced:
        check_the_guide_against_a_run(name, traced_calls(tmp_path))


# -- what the guide says of an example, against a run ------------------------------------------

def traced_calls(folder):
    """The calls that ended the supersteps of the traced runs in `folder`
    ("sync at sample_sort.py:40 in sample_sort"; a process's later runs
    write trace.2.json, ...)."""
    return {event["args"]["call"] for path in folder.glob("trace*.json")
            for event in json.loads(path.read_text())["traceEvents"] if "call" in event.get("args", {})}


def superstep_kinds():
    """The names of every kind of call that can end a superstep (sync,
    allgather, halo, save, ...), group collectives under their world names."""
    import bsp   # noqa: F401  (DistArray's kinds are defined on import)
    from bsp.core.sync_record import _KIND_NAMES
    return {name.removeprefix("group ") for name in _KIND_NAMES.values()}


def kind_of(call):
    """'gather(root=0) at stencil.py:43 in heat' -> 'gather'."""
    return call.split(" at ")[0].split("(")[0].removeprefix("group ")


def gallery():
    """The guide's table of examples: {file name: what it shows}."""
    rows = re.findall(r"^\| \[`([\w/]+\.py)`\]\([^)]*\) \| (.*?) \|", GALLERY.read_text(), re.MULTILINE)
    return dict(rows)


def named_kinds(text):
    """The kinds of superstep a gallery cell names: the last name of each
    dotted call in backquotes (`grid.column.allgather`: allgather)."""
    calls = {re.match(r"[\w.]*", span).group(0).rsplit(".", 1)[-1] for span in re.findall(r"`([^`]+)`", text)}
    return calls & superstep_kinds()


def profile_tables():
    """The call sites of each profile table the guide shows: {example file: set of calls}."""
    tables = {}
    for block in re.findall(r"^```\n(pybsp profile of .*?)^```", PROFILES.read_text(), re.MULTILINE | re.DOTALL):
        calls = set(re.findall(r"^\s*(?:\d+\s+)?(\w+(?:\(root=\d+\))? at ([\w/]+\.py):\d+ in \w+)", block, re.MULTILINE))
        for call, file in calls:
            tables.setdefault(file, set()).add(call)
    return tables


def check_the_guide_against_a_run(name, calls):
    shows = gallery()[name]
    made = {kind_of(call) for call in calls}
    assert named_kinds(shows) <= made, (f"the gallery's row of {name} names supersteps its run does not make: "
                                        f"{sorted(named_kinds(shows) - made)}; it made {sorted(made)}")
    documented = profile_tables().get(name)
    if documented is not None:
        assert documented == calls, (f"the profile table of {name} in {PROFILES.name} shows {sorted(documented)}; "
                                     f"a run makes {sorted(calls)}")


def test_the_gallery_has_a_row_for_every_example_and_checks_are_not_vacuous():
    assert sorted(gallery()) == sorted(path.name for path in EXAMPLES.glob("*.py"))
    assert named_kinds(gallery()["sample_sort.py"]) >= {"allgather"}
    assert set(profile_tables()) == {"sample_sort.py", "stencil.py"}
    assert set(profile_tables()) <= set(TYPICAL)


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


def python_block(page, marker):
    """The guide's code block (```python) on `page` that contains `marker`."""
    blocks = [block.split("```", 1)[0] for block in (GUIDE / page).read_text().split("```python\n")[1:]]
    [code] = [block for block in blocks if marker in block]
    return code


def test_the_guide_data_objects_example_runs():
    code = python_block("data-objects.md", "world.coarray(10, dtype=np.float64)")
    code += "\nresults = bsp.run(program, nprocs=3)\nassert results == [2997000.0] * 3, results\n"
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    lines = sorted(done.stdout.splitlines())
    assert lines[0] == "0 [0. 0. 0.] [0. 0. 1. 2. 3. 0. 0. 0. 0. 0.]"      # rank 1: the puts landed
    assert len(lines) == 3


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_bspbench_reports_g_and_l_from_element_puts(nprocs):
    done = run_example("bspbench.py", ["8", "3"], nprocs)
    assert done.returncode == 0, done.stdout + done.stderr
    check_bspbench_output(done.stdout, nprocs, 8)


def test_the_guide_distarray_example_runs():
    code = python_block("arrays.md", "a @ a.transpose()")
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr
    i, j = np.indices((6, 8))
    a = 10.0 * i + j
    a[::2, :4] *= -1
    assert done.stdout.strip() == str(((2, 2), (4, 1), (5, 6), (6, 6), float((a @ a.T).sum())))


def test_the_guide_groups_example_runs():
    code = python_block("supersteps.md", "world.grid((2, 3))")
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


def test_the_guide_debugging_session_finds_the_bug_as_shown(tmp_path):
    """Record debug_me.py on 4 ranks, replay ranks 2 and 1 under pdb with the
    guide's commands (docs/guide/debugging.md), and see what the guide shows."""
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
    shown = (GUIDE / "debugging.md").read_text()
    assert "(Pdb) p top, width, first\n    (932, 234, 468)\n    (Pdb) p source, reading\n    (1, np.int64(718))" in shown
    assert "-> world.sync()\n    (Pdb) p top, width, world.pid * width\n    (988, 248, 248)" in shown
    assert "(Pdb) until 43" in shown and "$ bsp replay run.bsprec --rank 2 --pdb" in shown
