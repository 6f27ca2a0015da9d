"""pybsp examples next to the same algorithms written with plain mpi4py
(examples/baselines/), and the run time of every example, on this machine,
in one run.  Usage (from the repository root):

    .venv/bin/python scripts/benchmarks/baselines.py [--nprocs 2] [--runs 5] [--report docs/baselines.md]

Each pybsp example runs with --timing on the fork backend (BSP_NPROCS) and
under `mpiexec -n N`; its baseline under `mpiexec -n N`; rounds alternate
between them so that a busy machine slows all of them alike.  The figures
are medians of the runs: the time the program reports for its parallel part
(the slowest rank, after the data is made and before the check), and the
wall time of the whole command (interpreter, MPI and numpy start-up, data,
check).  Lines of code are those that are neither blank nor comments, and
docstrings count as comments.  Every run must pass its own check.
"""

from __future__ import annotations

import argparse
import ast
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
EXAMPLES = ROOT / "examples"
BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"
PAIRS = [("sample_sort.py", "baselines/sample_sort_mpi4py.py"), ("pagerank.py", "baselines/pagerank_mpi4py.py")]
TIME = re.compile(r"^time: ([0-9.]+) s", re.MULTILINE)
CHECK = "check against the serial answer: OK"


def code_lines(path: Path) -> int:
    """Lines that are neither blank, nor comments, nor in a docstring."""
    source = path.read_text()
    docstrings = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.ClassDef)) and ast.get_docstring(node) is not None:
            first = node.body[0]
            docstrings.update(range(first.lineno, first.end_lineno + 1))
    return sum(1 for number, line in enumerate(source.splitlines(), 1)
               if line.strip() and not line.strip().startswith("#") and number not in docstrings)


def run(command: list, nprocs: int) -> tuple[float, float | None]:
    """Run an example; return (wall seconds, the time it printed or None)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    env["BSP_NPROCS"] = str(nprocs)
    start = time.perf_counter()
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, env=env,
                          cwd=ROOT, timeout=600)
    wall = time.perf_counter() - start
    if done.returncode != 0 or CHECK not in done.stdout:
        raise RuntimeError(f"{' '.join(map(str, command))} failed:\n{done.stdout}{done.stderr}")
    found = TIME.search(done.stdout)
    return wall, float(found.group(1)) if found else None


def commands(script: str, nprocs: int, timing: bool) -> dict[str, list]:
    """How to run a pybsp example on either backend."""
    arguments = [EXAMPLES / script] + (["--timing"] if timing else [])
    return {"fork": [sys.executable, *arguments],
            "mpi": [MPIEXEC, "-n", nprocs, sys.executable, *arguments]}


def measure(nprocs: int, runs: int) -> dict[tuple[str, str], list[tuple[float, float | None]]]:
    jobs = {}
    for example, baseline in PAIRS:
        for backend, command in commands(example, nprocs, timing=True).items():
            jobs[example, backend] = command
        jobs[example, "mpi4py"] = [MPIEXEC, "-n", nprocs, sys.executable, EXAMPLES / baseline, "--timing"]
    paired = {example for example, _ in PAIRS}
    for example in sorted(path.name for path in EXAMPLES.glob("*.py")):
        if example not in paired:
            for backend, command in commands(example, nprocs, timing=False).items():
                jobs[example, backend] = command
    samples: dict = {key: [] for key in jobs}
    for round_number in range(runs):
        print(f"round {round_number + 1} of {runs}", file=sys.stderr)
        for key, command in jobs.items():
            samples[key].append(run(command, nprocs))
    return samples


def median(values: list) -> float:
    return statistics.median(values)


def report(samples: dict, nprocs: int, runs: int) -> str:
    def timed(key: tuple) -> float:
        return median([seconds for _, seconds in samples[key]])

    def wall(key: tuple) -> float:
        return median([seconds for seconds, _ in samples[key]])

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    lines = ["# pybsp examples against plain mpi4py", "",
             f"Machine: {platform.machine()}, {cores} usable cores, Python {platform.python_version()}; "
             f"nprocs = {nprocs}; medians of {runs} runs; made by `scripts/benchmarks/baselines.py` "
             f"on {time.strftime('%Y-%m-%d')}; load average over the last minute {os.getloadavg()[0]:.1f}, "
             f"about {nprocs} of it the benchmark's own ranks (more means other work slowed every column).", "",
             "## The same algorithm, with pybsp and with mpi4py", "",
             "Parallel part: the time the program reports (`--timing`: the slowest rank, from the data in "
             "place to the result, without start-up, data generation or check). Ratio: pybsp under "
             "`mpiexec` over mpi4py under `mpiexec` (above 1: pybsp is slower). Lines: neither blank nor "
             "comment nor docstring; the baselines import the data generation and serial check from the "
             "pybsp example, so both counts are of the parallel program and its driver.", "",
             "| example | lines pybsp / mpi4py | parallel part: pybsp fork | pybsp MPI | mpi4py | "
             "ratio pybsp MPI / mpi4py | whole run: pybsp fork | pybsp MPI | mpi4py |",
             "|---|---|---|---|---|---|---|---|---|"]
    for example, baseline in PAIRS:
        fork, mpi, raw = timed((example, "fork")), timed((example, "mpi")), timed((example, "mpi4py"))
        lines.append(
            f"| `{example}` vs `{baseline}` | {code_lines(EXAMPLES / example)} / {code_lines(EXAMPLES / baseline)} "
            f"| {fork:.3f} s | {mpi:.3f} s | {raw:.3f} s | {mpi / raw:.2f} | {wall((example, 'fork')):.2f} s "
            f"| {wall((example, 'mpi')):.2f} s | {wall((example, 'mpi4py')):.2f} s |")
    lines += ["", "## Every example", "",
              f"Wall time of the whole command with its default sizes, `python examples/X.py` with "
              f"BSP_NPROCS={nprocs} (fork) and `mpiexec -n {nprocs} python examples/X.py` (MPI); lines as above.",
              "", "| example | lines | fork | MPI |", "|---|---|---|---|"]
    for example in sorted({example for example, _ in samples}):
        lines.append(f"| `{example}` | {code_lines(EXAMPLES / example)} | {wall((example, 'fork')):.2f} s "
                     f"| {wall((example, 'mpi')):.2f} s |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--report", type=Path, help="also write the table to this markdown file")
    options = parser.parse_args()
    if not MPIEXEC.exists():
        raise SystemExit(f"no mpiexec beside {sys.executable}: scripts/setup test mpich installs one")
    text = report(measure(options.nprocs, options.runs), options.nprocs, options.runs)
    print(text, end="")
    if options.report:
        options.report.write_text(text)


if __name__ == "__main__":
    main()
