"""DistArray benchmarks, measured and reported (never asserted):

- `redistribute` of an n x n float64 array from (block, block) to
  (cyclic, cyclic) on a near-square grid, on both backends, against the same
  redistribution written by hand with mpi4py's Alltoallv (pack, Alltoallv,
  unpack, buffers allocated once), in the same MPI job;
- `A @ B` (SUMMA) of two n x n float64 matrices on both backends, against
  numpy's product in one process, with one BLAS thread and with the
  machine's default;
- the BSP prediction, sum(w_max + g*h_max + l) with g and l measured in the
  same process, against the measured time of examples/matmul.py.

Usage: scripts/bench_distarray [--nprocs 4] [--rounds 5] [--redistribute-n 4096]
[--matmul-n 2048] [--quick] [--report docs/benchmarks.md] [--json FILE]
The report replaces its own section of docs/benchmarks.md.  The wrapper runs
everything with one BLAS thread per process: a rank is a process, so p
ranks use p cores, as the numpy baseline with one thread uses one."""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

import prediction            # (it puts examples/ on the path)
import sections
from matmul import product as matmul_example_product    # examples/matmul.py

import bsp
from bsp import DistArray
from bsp.objects.grid import dims_create

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent

BEFORE, AFTER = ("block", "block"), ("cyclic", "cyclic")
SECTION = "scripts/bench_distarray"
BLAS_THREADS = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS")


# -- pybsp, on either backend (each returns, per repetition, the slowest rank's seconds) --

def redistribute_times(world: bsp.World, n: int, repetitions: int) -> list[float]:
    d = DistArray.from_function(world, (n, n), lambda i, j: i * n + j, dtype=np.float64, distribution=BEFORE)
    times = []
    for _ in range(repetitions):
        world.sync()
        start = time.perf_counter()
        e = d.redistribute(AFTER)
        times.append(time.perf_counter() - start)
    assert np.array_equal(e.local, e.index(0)[:, None] * n + e.index(1)[None, :])
    return world.allreduce(np.array(times), op=np.maximum).tolist()


def matmul_times(world: bsp.World, n: int, repetitions: int) -> list[float]:
    rng = np.random.default_rng(world.pid)
    a = DistArray.from_function(world, (n, n), lambda i, j: rng.random((len(i), j.shape[1])), distribution=BEFORE)
    b = DistArray.from_function(world, (n, n), lambda i, j: rng.random((len(i), j.shape[1])), distribution=BEFORE)
    times = []
    for _ in range(repetitions):
        world.sync()
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return world.allreduce(np.array(times), op=np.maximum).tolist()


# -- the hand-written mpi4py redistribution ----------------------------------------

def raw_redistribute_times(comm, n: int, repetitions: int) -> list[float]:
    """(block, block) to (cyclic, cyclic) on the same grid, by hand: every
    rank packs, for each destination, the strided part of its block that the
    destination will hold, one Alltoallv moves them, and each rank unpacks
    the blocks it got into its cyclic part.  Needs n divisible by M*M and N*N."""
    from mpi4py import MPI
    p, pid = comm.Get_size(), comm.Get_rank()
    M, N = dims_create(p, 2)
    s, t = divmod(pid, N)
    R, C = n // M, n // N
    r, c = R // M, C // N                           # the piece one rank sends another
    local = (np.arange(s * R, s * R + R)[:, None] * n + np.arange(t * C, t * C + C)[None, :]).astype(np.float64)
    send, receive, out = np.empty(p * r * c), np.empty(p * r * c), np.empty((n // M, n // N))
    spec = ([r * c] * p, [k * r * c for k in range(p)], MPI.DOUBLE)
    times = []
    for _ in range(repetitions):
        comm.Barrier()
        start = time.perf_counter()
        for dest in range(p):
            s2, t2 = divmod(dest, N)
            send[dest * r * c:(dest + 1) * r * c].reshape(r, c)[...] = local[(s2 - s * R) % M::M, (t2 - t * C) % N::N]
        comm.Alltoallv([send, *spec], [receive, *spec])
        for source in range(p):
            s0, t0 = divmod(source, N)
            row, column = -(-(s0 * R - s) // M), -(-(t0 * C - t) // N)
            out[row:row + r, column:column + c] = receive[source * r * c:(source + 1) * r * c].reshape(r, c)
        times.append(time.perf_counter() - start)
    assert np.array_equal(out, np.arange(s, n, M)[:, None] * n + np.arange(t, n, N)[None, :])
    slowest = np.empty(repetitions)
    comm.Allreduce(np.array(times), slowest, op=MPI.MAX)
    return slowest.tolist()


def mpi_job(plan: dict) -> None:
    """Under mpiexec: raw mpi4py first (after the first bsp.run, ranks other
    than 0 only serve rank 0's runs), then pybsp's MPI backend."""
    from mpi4py import MPI
    comm = MPI.COMM_WORLD
    results = {"raw|redistribute": raw_redistribute_times(comm, *plan["redistribute"])}
    results["mpi|redistribute"] = bsp.run(redistribute_times, *plan["redistribute"], backend="mpi")[0]
    results["mpi|matmul"] = bsp.run(matmul_times, *plan["matmul"], backend="mpi")[0]
    params, predicted, measured, _ = prediction.predict(matmul_example_product, [plan["example_n"]], None,
                                                        plan["example_runs"], "mpi")
    results["mpi|prediction"] = list(zip(predicted, measured))
    results["mpi|machine"] = [params.g, params.l]
    if comm.Get_rank() == 0:
        print(json.dumps(results))


# -- in the launching process ----------------------------------------------------------

def numpy_matmul_times(n: int, repetitions: int, threads: str | None) -> list[float]:
    """Seconds of a @ b in a fresh process, with `threads` BLAS threads (None: the default)."""
    env = {key: value for key, value in os.environ.items() if key not in BLAS_THREADS}
    if threads is not None:
        env.update({key: threads for key in BLAS_THREADS})
    code = ("import json, time, numpy as np\n"
            f"rng = np.random.default_rng(0); a, b = rng.random(({n}, {n})), rng.random(({n}, {n}))\n"
            "times = []\n"
            f"for _ in range({repetitions}):\n"
            "    start = time.perf_counter(); a @ b; times.append(time.perf_counter() - start)\n"
            "print(json.dumps(times))\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout)


def collect(options: argparse.Namespace) -> dict:
    p = options.nprocs
    repetitions = 3 if options.quick else 5
    plan = {"redistribute": [options.redistribute_n, repetitions], "matmul": [options.matmul_n, repetitions],
            "example_n": options.matmul_n, "example_runs": 1 if options.quick else 3}
    samples: dict[str, list] = {}
    for round_number in range(options.rounds):
        print(f"round {round_number + 1} of {options.rounds}", file=sys.stderr)
        found = {"fork|redistribute": bsp.run(redistribute_times, *plan["redistribute"], nprocs=p, backend="fork")[0],
                 "fork|matmul": bsp.run(matmul_times, *plan["matmul"], nprocs=p, backend="fork")[0]}
        params, predicted, measured, _ = prediction.predict(matmul_example_product, [options.matmul_n], p,
                                                            plan["example_runs"], "fork")
        found["fork|prediction"] = list(zip(predicted, measured))
        found["fork|machine"] = [[params.g, params.l]]
        command = [str(Path(sys.executable).parent / "bsp"), "run", "--mpi", "-n", str(p), __file__,
                   "--mpi-job", json.dumps(plan)]
        done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
        if done.returncode != 0:
            raise RuntimeError(f"the MPI job failed:\n{done.stdout}\n{done.stderr}")
        job = json.loads(done.stdout.strip().splitlines()[-1])
        job["mpi|machine"] = [job["mpi|machine"]]
        found.update(job)
        found["numpy|1"] = numpy_matmul_times(options.matmul_n, repetitions, "1")
        found["numpy|default"] = numpy_matmul_times(options.matmul_n, repetitions, None)
        for key, values in found.items():
            samples.setdefault(key, []).extend(values)
    return samples


def report(samples: dict, options: argparse.Namespace) -> str:
    med = {key: float(np.median(values)) for key, values in samples.items() if np.ndim(values) == 1}
    p, n, m = options.nprocs, options.redistribute_n, options.matmul_n
    grid = dims_create(p, 2)
    moved = 8 * n * n * (1 - 1 / p) / p             # bytes a rank sends (and receives)
    flops = 2 * m ** 3
    lines = ["## DistArray: redistribute and A @ B", "",
             f"Made by `scripts/bench_distarray` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
             f"{os.cpu_count()} cores (shared with other jobs), Python {platform.python_version()}, "
             f"numpy {np.__version__}, MPICH from PyPI; nprocs = {p} on a {grid[0]} x {grid[1]} grid"
             f"{' (more ranks than cores: oversubscribed)' if p > (os.cpu_count() or 1) else ''}; "
             f"one BLAS thread per process unless said; medians of {len(samples['fork|redistribute'])} "
             f"repetitions over {options.rounds} rounds; each repetition is the slowest rank's time.", "",
             f"Redistribution of a {n} x {n} float64 array, (block, block) to (cyclic, cyclic): each rank sends "
             f"{moved / 2**20:.1f} MiB and receives as much (lower is better):", "",
             "| system | time (ms) | / raw mpi4py | GB/s per rank |", "|---|---|---|---|"]
    raw = med["raw|redistribute"]
    for key, name in [("raw|redistribute", "mpi4py by hand (pack, Alltoallv, unpack)"),
                      ("fork|redistribute", "pybsp fork backend, `redistribute`"),
                      ("mpi|redistribute", "pybsp MPI backend, `redistribute`")]:
        lines.append(f"| {name} | {med[key] * 1e3:.1f} | {med[key] / raw:.2f} | {moved / med[key] / 1e9:.2f} |")
    lines += ["", f"A @ B, {m} x {m} float64 (SUMMA, one panel), against numpy in one process (higher speed-up "
              "is better):", "", "| system | time (ms) | Gflop/s | speed-up over numpy, 1 thread |", "|---|---|---|---|"]
    single = med["numpy|1"]
    for key, name in [("numpy|1", "numpy, one process, 1 BLAS thread"),
                      ("numpy|default", f"numpy, one process, default BLAS threads ({os.cpu_count()} cores)"),
                      ("fork|matmul", f"pybsp fork backend, {p} ranks"), ("mpi|matmul", f"pybsp MPI backend, {p} ranks")]:
        lines.append(f"| {name} | {med[key] * 1e3:.1f} | {flops / med[key] / 1e9:.1f} | {single / med[key]:.2f} |")
    lines += ["", f"BSP prediction against measurement, `examples/matmul.py {m}` (the example whole: building A "
              "and B, the product, the gather of C), g and l measured in the same process just before:", "",
              "| backend | g (ns/byte) | l (us) | predicted (ms) | measured (ms) | error |", "|---|---|---|---|---|---|"]
    for backend in ("fork", "mpi"):
        pairs = samples[f"{backend}|prediction"]
        predicted = statistics.median(pair[0] for pair in pairs)
        measured = statistics.median(pair[1] for pair in pairs)
        g, l = np.median(samples[f"{backend}|machine"], axis=0)
        errors = ", ".join(f"{(a - b) / b * 100:+.1f}%" for a, b in pairs)
        lines.append(f"| {backend} | {g * 1e9:.3f} | {l * 1e6:.0f} | {predicted * 1e3:.0f} | {measured * 1e3:.0f} | "
                     f"{(predicted - measured) / measured * 100:+.1f}% (runs: {errors}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--redistribute-n", type=int, default=4096)
    parser.add_argument("--matmul-n", type=int, default=2048)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions, for a smoke test")
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--json", help="write every sample here as JSON")
    parser.add_argument("--mpi-job", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.mpi_job:
        mpi_job(json.loads(options.mpi_job))
        return
    samples = collect(options)
    text = report(samples, options)
    print(text)
    if options.report:
        path = Path(options.report)
        path.write_text(sections.splice(path.read_text() if path.exists() else "", SECTION, text))
    if options.json:
        Path(options.json).write_text(json.dumps(samples, indent=1))


if __name__ == "__main__":
    main()
