"""pybsp's fork and MPI backends next to raw mpi4py: same machine, same
nprocs, one run.  Usage: scripts/bench [--nprocs 2] [--rounds 3] [--quick]
[--report FILE.md] [--json FILE.json]

Each round measures every workload on the fork backend (in this process),
then starts one MPI job that measures raw mpi4py and pybsp's MPI backend.
The figures are medians of every repetition of every round."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
from pathlib import Path

import programs

import bsp

HERE = Path(__file__).resolve().parent
BSP_COMMAND = Path(sys.executable).parent / "bsp"
KIB, MIB = 1 << 10, 1 << 20
SIZES = [KIB, 16 * KIB, 256 * KIB, 4 * MIB, 64 * MIB]


def plan(quick: bool) -> dict:
    batches, per_batch = (10, 200) if quick else (20, 1000)
    repetitions = {size: max(3, min(50, (256 * MIB) // (size * 4))) for size in SIZES}
    if quick:
        repetitions = {size: max(3, count // 5) for size, count in repetitions.items()}
    sync = [batches, per_batch]
    return {
        "raw": [("barrier", 0, sync), ("alltoall_counts", 0, sync)]
               + [("alltoallv", size, [size, repetitions[size]]) for size in SIZES],
        "bsp": [("empty_superstep", 0, sync)]
               + [("exchange", size, [size, repetitions[size]]) for size in SIZES],
    }


def measure_fork(work: dict, nprocs: int) -> dict:
    return {f"{name}|{size}": bsp.run(getattr(programs, name), *args, nprocs=nprocs, backend="fork")[0]
            for name, size, args in work["bsp"]}


def measure_mpi(work: dict, nprocs: int) -> dict:
    command = [str(BSP_COMMAND), "run", "--mpi", "-n", str(nprocs), str(HERE / "mpi_worker.py"), json.dumps(work)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        raise RuntimeError(f"the MPI job failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def collect(nprocs: int, rounds: int, quick: bool) -> dict:
    work = plan(quick)
    samples: dict[str, list[float]] = {}
    for round_number in range(rounds):
        print(f"round {round_number + 1} of {rounds}: fork backend", file=sys.stderr)
        for key, times in measure_fork(work, nprocs).items():
            samples.setdefault(f"fork|{key}", []).extend(times)
        print(f"round {round_number + 1} of {rounds}: MPI job (raw mpi4py, then MPI backend)", file=sys.stderr)
        for key, times in measure_mpi(work, nprocs).items():
            system = "raw" if key.split("|")[0] in {name for name, _, _ in work["raw"]} else "mpi"
            samples.setdefault(f"{system}|{key}", []).extend(times)
    return {key: statistics.median(times) for key, times in samples.items()}


def machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.node()}: {platform.processor() or platform.machine()}, {cores} usable cores, " \
           f"Python {platform.python_version()}"


def report(medians: dict, nprocs: int, rounds: int) -> str:
    def get(system, name, size=0):
        return medians.get(f"{system}|{name}|{size}")

    lines = [f"Machine: {machine()}; nprocs = {nprocs}; medians of {rounds} rounds.", "",
             "Empty superstep (a sync with no traffic), microseconds:", "",
             "| system | time | / raw Barrier | / raw Alltoall of counts |", "|---|---|---|---|"]
    barrier, counts = get("raw", "barrier"), get("raw", "alltoall_counts")
    lines.append(f"| raw mpi4py Barrier | {barrier * 1e6:.2f} | 1.00 | |")
    lines.append(f"| raw mpi4py Alltoall (int64 count per rank) | {counts * 1e6:.2f} | | 1.00 |")
    for system, label in (("fork", "pybsp fork backend"), ("mpi", "pybsp MPI backend")):
        time = get(system, "empty_superstep")
        lines.append(f"| {label} | {time * 1e6:.2f} | {time / barrier:.2f} | {time / counts:.2f} |")
    lines += ["", "Exchange: every rank sends one numpy array of the given size to every other rank; "
                  "throughput = bytes sent per rank / time, GB/s (higher is better):", "",
              "| bytes per rank | raw mpi4py Alltoallv | fork backend | MPI backend | fork / raw | MPI / raw |",
              "|---|---|---|---|---|---|"]
    for size in SIZES:
        rate = {system: size * (nprocs - 1) / get(system, name, size)
                for system, name in (("raw", "alltoallv"), ("fork", "exchange"), ("mpi", "exchange"))}
        lines.append(f"| {_bytes(size)} | {rate['raw'] / 1e9:.2f} | {rate['fork'] / 1e9:.2f} | "
                     f"{rate['mpi'] / 1e9:.2f} | {rate['fork'] / rate['raw']:.2f} | {rate['mpi'] / rate['raw']:.2f} |")
    return "\n".join(lines) + "\n"


def _bytes(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke test")
    parser.add_argument("--report", help="write the markdown report here too")
    parser.add_argument("--json", help="write the medians here as JSON")
    options = parser.parse_args()
    medians = collect(options.nprocs, options.rounds, options.quick)
    text = report(medians, options.nprocs, options.rounds)
    print(text)
    if options.report:
        Path(options.report).write_text(text)
    if options.json:
        Path(options.json).write_text(json.dumps(medians, indent=1))


if __name__ == "__main__":
    main()
