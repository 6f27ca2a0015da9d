"""Instructions per superstep, counted by valgrind's callgrind (independent
of the machine's load, unlike timings): a superstep in which the one rank
sends `count` floats to itself and reads them, at nprocs = 1, on the fork
backend and (with --mpi) on the MPI backend under `mpiexec -n 1`.

Each program runs SHORT and then LONG supersteps; the difference of the
rank process's instruction counts, divided by LONG - SHORT, is the cost of
one superstep, start-up and the first supersteps' warming left out.  Run it
once per build (BSP_PURE_PYTHON=1 for the pure Python one):

    .venv/bin/python scripts/benchmarks/instructions.py [--mpi] [--counts 0,1,10,100]

Prints one JSON object: {"build": ..., "fork|1": instructions, ...}."""

from __future__ import annotations

import argparse
import glob
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SHORT, LONG = 50, 300
ROOT = Path(__file__).resolve().parent.parent.parent
PROGRAM = """
import sys
import bsp

def program(world, count, supersteps):
    for _ in range(supersteps):
        for item in range(count):
            world.send(item + 0.5, world.pid)
        world.sync()
        world.messages()

count, supersteps, backend = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3]
bsp.run(program, count, supersteps, nprocs=1, backend=backend)
"""


def rank_instructions(command: list[str], env: dict) -> int:
    """The instructions of the main thread of the rank process of `command`, under callgrind:
    on fork the busiest process but the launching one (a forked rank's
    count includes what its parent ran before the fork), under mpiexec the
    busiest process valgrind started."""
    with tempfile.TemporaryDirectory() as scratch:
        # Per thread: a thread that polls (an output relay, a watchdog) runs
        # as long as the program does, which is no measure of a superstep.
        valgrind = ["valgrind", "--tool=callgrind", "--trace-children=yes", "--separate-threads=yes",
                    f"--callgrind-out-file={scratch}/out.%p"]
        if command[0].endswith("mpiexec"):
            command = [*command[:3], *valgrind, *command[3:]]
        else:
            command = [*valgrind, *command]
        process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        if process.wait():
            raise RuntimeError(f"{command} failed ({process.returncode})")
        launcher = f"{scratch}/out.{process.pid}-01"
        counts = []
        for path in glob.glob(f"{scratch}/out.*-01"):        # main threads only
            if path == launcher and not command[0].endswith("mpiexec"):
                continue
            for line in Path(path).read_text(errors="replace").splitlines():
                if line.startswith(("summary:", "totals:")):
                    counts.append(int(line.split()[1]))
                    break
        return max(counts)


def per_superstep(backend: str, count: int) -> float:
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    python = [sys.executable, "-c", PROGRAM, str(count)]
    found = []
    for supersteps in (SHORT, LONG):
        command = [*python, str(supersteps), backend]
        if backend == "mpi":
            command = [str(Path(sys.executable).parent / "mpiexec"), "-n", "1", *command]
        found.append(rank_instructions(command, env))
    return (found[1] - found[0]) / (LONG - SHORT)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mpi", action="store_true", help="the MPI backend too (mpiexec -n 1)")
    parser.add_argument("--counts", default="0,1,10,100", help="messages per superstep")
    options = parser.parse_args()
    sys.path.insert(0, str(ROOT))
    from bsp import compiled

    results: dict[str, object] = {"build": compiled.describe()}
    for backend in ("fork", "mpi") if options.mpi else ("fork",):
        for count in map(int, options.counts.split(",")):
            results[f"{backend}|{count}"] = round(per_superstep(backend, count))
    print(json.dumps(results))


if __name__ == "__main__":
    main()
