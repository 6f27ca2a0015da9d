"""DistArray against Heat and numpy (issue 25's benchmarks), measured and
reported, never asserted.

For each row, in one run on the same machine: pybsp (the MPI backend) and
Heat in the same MPI job at each nprocs, and numpy in one process just
before that job:

- `sum(axis=0)` and `sum(axis=1)` of an n x n float64 array split along axis 0;
- the resplit of that array from axis 0 to axis 1 (pybsp: `redistribute`
  from ("block", None) to (None, "block"); Heat: `ht.resplit(x, 1)`; numpy
  has no counterpart);
- `A @ B` of two m x m float64 matrices, both split along axis 0;
- the sort of s float64 (a 1-D array, so along its split axis; Heat's
  `ht.sort` also returns the indices, which it cannot skip);
- the slice-and-assign `d[1:-1, ::2] = d[:-2, ::2] + 1` on the n x n array.

Before anything is timed, each row of each system is run on small odd
shapes (uneven parts) and its gathered answer compared with numpy's; a row
that gives a wrong answer, or raises, is reported as such and not timed.
Inputs are uniform random float64 (each system's own generator).  Every
repetition's time is the slowest rank's, after a barrier; the median is
reported.  Memory is each rank's peak resident set (VmHWM of
/proc/self/status, reset by writing 5 to /proc/self/clear_refs before the
row's repetitions: getrusage's ru_maxrss is the same high-water mark but
cannot be reset, and pybsp and Heat share the processes of one job), and the
rise of that peak over the resident set just before the repetitions (the
inputs already built): the largest over ranks.

Usage (through the wrapper, which makes .venv-heat and sets one BLAS and one
OpenMP thread per process): scripts/bench_heat [--nprocs 2 4] [--quick]
[--repetitions 5] [--report docs/benchmarks.md] [--json FILE] [--from-json FILE]"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import os
import platform
import re
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np

import sections

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
SECTION = "scripts/bench_heat"

FULL = {"square": 4096, "matmul": 2048, "sort": 2 ** 24}
QUICK = {"square": 1024, "matmul": 512, "sort": 2 ** 20}
CHECK_SHAPES = {"square": (37, 53), "matmul": (45, 45), "sort": (1001,)}
SLOW_SECONDS = 2.0          # a row whose first repetition takes longer gets SLOW_REPETITIONS
SLOW_REPETITIONS = 3
TORCHVISION_SCHEMAS: list[Any] = []     # see import_heat: a library fragment's definitions live as long as it


# -- the rows ------------------------------------------------------------------------------

def slice_assign(system: Any, d: Any) -> Any:
    d[1:-1, ::2] = d[:-2, ::2] + 1
    return d


@dataclass(frozen=True)
class Row:
    name: str
    kind: str                                   # a key of FULL: the shape of the operands
    operands: int
    op: Callable[..., Any]                      # op(system, *operands), the same code for every system
    in_numpy: bool = True                       # whether numpy has a counterpart to time


ROWS = (
    Row("sum(axis=0)", "square", 1, lambda s, x: x.sum(axis=0)),
    Row("sum(axis=1)", "square", 1, lambda s, x: x.sum(axis=1)),
    Row("resplit axis 0 to 1", "square", 1, lambda s, x: s.resplit(x), in_numpy=False),
    Row("A @ B", "matmul", 2, lambda s, a, b: a @ b),
    Row("sort (split axis)", "sort", 1, lambda s, x: s.sort(x)),
    Row("d[1:-1, ::2] = d[:-2, ::2] + 1", "square", 1, slice_assign),
)


def shape_of(kind: str, sizes: dict[str, int]) -> tuple[int, ...]:
    return (sizes[kind],) if kind == "sort" else (sizes[kind], sizes[kind])


# -- the systems: how each one makes, splits, gathers, sorts and times -------------------------

class Numpy:
    """numpy in one process: the reference and the one-process baseline."""
    name = "numpy"

    def random(self, shape: tuple[int, ...], seed: int) -> np.ndarray:
        return np.random.default_rng(seed).random(shape)

    def scatter(self, a: np.ndarray) -> np.ndarray:
        return a.copy()

    def gather(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(x)

    def sort(self, x: np.ndarray) -> np.ndarray:
        return np.sort(x)

    def resplit(self, x: np.ndarray) -> np.ndarray:
        return x                                # one process: nothing to move (the check's reference)

    def barrier(self) -> None:
        pass

    def slowest(self, value: float) -> float:
        return value


class Heat:
    """Heat on MPI_COMM_WORLD, every operand split along axis 0."""
    name = "heat"

    def __init__(self) -> None:
        from mpi4py import MPI
        self.ht, self.comm, self.max = import_heat(), MPI.COMM_WORLD, MPI.MAX

    def random(self, shape: tuple[int, ...], seed: int) -> Any:
        self.ht.random.seed(seed)
        return self.ht.random.rand(*shape, dtype=self.ht.float64, split=0)

    def scatter(self, a: np.ndarray) -> Any:
        return self.ht.array(a.copy(), split=0)   # ht.array may share the ndarray's memory: a copy

    def gather(self, x: Any) -> np.ndarray:
        return x.numpy()

    def sort(self, x: Any) -> Any:
        return self.ht.sort(x, axis=0)[0]

    def resplit(self, x: Any) -> Any:
        return self.ht.resplit(x, 1)

    def barrier(self) -> None:
        self.comm.Barrier()

    def slowest(self, value: float) -> float:
        return float(self.comm.allreduce(value, op=self.max))


class Pybsp:
    """pybsp's DistArray inside a bsp.run program, operands ("block", None)."""
    name = "pybsp"

    def __init__(self, world: Any) -> None:
        self.world = world

    @staticmethod
    def split0(ndim: int) -> tuple[Any, ...]:
        return ("block",) + (None,) * (ndim - 1)

    def random(self, shape: tuple[int, ...], seed: int) -> Any:
        from bsp import DistArray
        rng = np.random.default_rng([seed, self.world.pid])
        return DistArray.from_function(self.world, shape, lambda *index: rng.random(np.broadcast_shapes(
            *(i.shape for i in index))), distribution=self.split0(len(shape)))

    def scatter(self, a: np.ndarray) -> Any:
        from bsp import DistArray
        return DistArray.from_array(self.world, a, distribution=self.split0(a.ndim))

    def gather(self, x: Any) -> np.ndarray:
        return x.allgather()

    def sort(self, x: Any) -> Any:
        return np.sort(x)

    def resplit(self, x: Any) -> Any:
        return x.redistribute((None, "block"))

    def barrier(self) -> None:
        self.world.sync()

    def slowest(self, value: float) -> float:
        return float(self.world.allreduce(value, op=max))


def import_heat() -> Any:
    """Heat, imported with one torch thread.  Heat imports torchvision (for its
    MNIST data set and image transforms, which no row uses).  PyPI's
    torchvision wheel is linked against CUDA torch, so with the CPU torch its
    C ops do not load, and torchvision 0.28 then fails at import, registering
    fake kernels for two ops it never defined (torchvision::nms and qnms).
    Defining those two schemas, without kernels (a call would raise), lets it
    import; where the C ops load, nothing is defined."""
    import torch
    torch.set_num_threads(1)
    spec = importlib.util.find_spec("torchvision")
    library = next(Path(list(spec.submodule_search_locations or [])[0]).glob("_C*.so"), None) if spec else None
    try:
        if library is None:
            raise OSError("no torchvision/_C")
        torch.ops.load_library(str(library))
    except OSError:
        fragment = torch.library.Library("torchvision", "FRAGMENT")
        for name in ("nms", "qnms"):
            fragment.define(f"{name}(Tensor dets, Tensor scores, float iou_threshold) -> Tensor")
        TORCHVISION_SCHEMAS.append(fragment)
    import heat
    return heat


# -- measuring -----------------------------------------------------------------------------------

def memory_mib(field: str) -> float:
    """VmRSS or VmHWM of this process, in MiB."""
    status = Path("/proc/self/status").read_text()
    return int(re.search(rf"{field}:\s+(\d+)", status).group(1)) / 1024      # type: ignore[union-attr]


def reset_peak() -> None:
    Path("/proc/self/clear_refs").write_text("5")      # VmHWM := VmRSS (Linux 4.0 and later)


def check(system: Any, row: Row) -> str | None:
    """None if the row gives numpy's answer on small odd shapes, else what went wrong."""
    arrays = [np.random.default_rng(seed).random(CHECK_SHAPES[row.kind]) for seed in range(row.operands)]
    expected = row.op(Numpy(), *[a.copy() for a in arrays])
    try:
        got = system.gather(row.op(system, *[system.scatter(a) for a in arrays]))
    except Exception as error:          # reported in the table, on every rank alike (collective errors)
        return f"raised {type(error).__name__}: {error}"[:200]
    if got.shape != expected.shape or not np.allclose(got, expected, rtol=1e-12, atol=1e-12):
        return f"wrong answer on {CHECK_SHAPES[row.kind]}: shape {got.shape}, expected {expected.shape}"
    return None


def measure(system: Any, row: Row, sizes: dict[str, int], repetitions: int) -> dict[str, Any]:
    """The row's times (the slowest rank's, per repetition), peak and rise in MiB (the largest rank's)."""
    wrong = check(system, row)
    if wrong is not None:
        return {"wrong": wrong}
    operands = [system.random(shape_of(row.kind, sizes), seed) for seed in range(row.operands)]
    gc.collect()
    system.barrier()
    base = memory_mib("VmRSS")
    reset_peak()
    times: list[float] = []
    while len(times) < (repetitions if not times or times[0] < SLOW_SECONDS else min(repetitions, SLOW_REPETITIONS)):
        system.barrier()
        start = time.perf_counter()
        result = row.op(system, *operands)
        elapsed = time.perf_counter() - start
        del result
        times.append(system.slowest(elapsed))
    peak = memory_mib("VmHWM")
    return {"times": times, "peak": system.slowest(peak), "rise": system.slowest(peak - base)}


def measure_rows(system: Any, plan: dict[str, Any]) -> dict[str, Any]:
    return {row.name: measure(system, row, plan["sizes"], plan["repetitions"])
            for row in ROWS if row.in_numpy or not isinstance(system, Numpy)}


def load() -> str:
    """The load averages over 1, 5 and 15 minutes."""
    return ", ".join(Path("/proc/loadavg").read_text().split()[:3])


def pybsp_program(world: Any, plan: dict[str, Any]) -> dict[str, Any]:
    return measure_rows(Pybsp(world), plan)


def mpi_job(plan: dict[str, Any]) -> None:
    """Under mpiexec: Heat first, every rank (after the first bsp.run the
    ranks other than 0 only serve rank 0's runs), then pybsp's MPI backend."""
    import bsp
    heat = Heat()
    results = {"load_start": load(), "heat": measure_rows(heat, plan)}
    results["pybsp"] = bsp.run(pybsp_program, plan, backend="mpi")[0]
    results["load_end"] = load()
    if heat.comm.Get_rank() == 0:
        print(json.dumps(results))


# -- in the launching process --------------------------------------------------------------------

def run_json(command: list[str]) -> dict[str, Any]:
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command[:5])} failed:\n{done.stdout[-4000:]}\n{done.stderr[-4000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def collect(options: argparse.Namespace) -> dict[str, Any]:
    plan = {"sizes": QUICK if options.quick else FULL, "repetitions": options.repetitions}
    found: dict[str, Any] = {"plan": plan, "load_start": load(), "versions": versions(), "runs": {}}
    for p in options.nprocs:
        print(f"nprocs {p}: numpy, then Heat and pybsp under mpiexec (load {load()})", file=sys.stderr)
        started = time.perf_counter()
        numpy = run_json([sys.executable, __file__, "--numpy-job", json.dumps(plan)])
        job = run_json([str(Path(sys.executable).parent / "bsp"), "run", "--mpi", "-n", str(p), __file__,
                        "--mpi-job", json.dumps(plan)])
        found["runs"][str(p)] = {"numpy": numpy, **job, "seconds": time.perf_counter() - started}
        found["load_end"] = load()
        if options.json:                        # after each job: a later one that fails loses nothing
            Path(options.json).write_text(json.dumps(found, indent=1))
    return found


def versions() -> dict[str, str]:
    code = ("import json, numpy, torch, mpi4py, bsp.compiled, heat_compare as h; heat = h.import_heat(); "
            "print(json.dumps({'heat': heat.__version__, 'torch': torch.__version__, "
            "'numpy': numpy.__version__, 'mpi4py': mpi4py.__version__, 'build': bsp.compiled.describe()}))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True,
                          cwd=HERE, env={**os.environ, "PYTHONPATH": str(HERE)})
    return json.loads(done.stdout.strip().splitlines()[-1])


# -- the report ----------------------------------------------------------------------------------

def cell(result: dict[str, Any] | None, key: str) -> str:
    if result is None:
        return "n/a"
    if "wrong" in result:
        return "**not timed**"
    value = statistics.median(result["times"]) * 1e3 if key == "ms" else result[key]
    return f"{value:.1f}" if key == "ms" else f"{value:.0f}"


def ratio(over: dict[str, Any] | None, under: dict[str, Any] | None) -> str:
    if over is None or under is None or "wrong" in over or "wrong" in under:
        return "n/a"
    return f"{statistics.median(over['times']) / statistics.median(under['times']):.2f}"


def memory(result: dict[str, Any] | None) -> str:
    if result is None or "wrong" in result:
        return "n/a"
    return f"{result['peak']:.0f} (+{result['rise']:.0f})"


def table(run: dict[str, Any]) -> list[str]:
    lines = ["| operation | numpy (ms) | pybsp (ms) | Heat (ms) | pybsp / Heat | numpy / pybsp | "
             "reps | peak MiB per rank (+ rise): numpy | pybsp | Heat |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    notes = []
    for row in ROWS:
        numpy, pybsp, heat = (run[name].get(row.name) for name in ("numpy", "pybsp", "heat"))
        counts = "/".join(str(len(r["times"])) for r in (numpy, pybsp, heat) if r and "times" in r)
        lines.append(f"| `{row.name}` | {cell(numpy, 'ms')} | {cell(pybsp, 'ms')} | {cell(heat, 'ms')} | "
                     f"{ratio(pybsp, heat)} | {ratio(numpy, pybsp)} | {counts} | {memory(numpy)} | "
                     f"{memory(pybsp)} | {memory(heat)} |")
        notes += [f"- {name} `{row.name}`: {r['wrong']}" for name, r in (("numpy", numpy), ("pybsp", pybsp),
                                                                          ("Heat", heat)) if r and "wrong" in r]
    return lines + ([""] + notes if notes else [])


def report(found: dict[str, Any]) -> str:
    sizes, v = found["plan"]["sizes"], found["versions"]
    quick = sizes == QUICK
    cores = os.cpu_count() or 1
    lines = ["## DistArray against Heat and numpy", "",
             f"Made by `scripts/bench_heat{' --quick' if quick else ''} --nprocs {' '.join(found['runs'])}` on {time.strftime('%Y-%m-%d')}: {platform.machine()}, "
             f"{cores} cores, Python {platform.python_version()}, numpy {v['numpy']}, Heat {v['heat']} (PyPI has "
             f"no Heat 1.9), torch {v['torch']} (a CPU build; Heat 1.8.0 declares torch<2.11.1, so it is installed "
             f"with --no-deps), mpi4py {v['mpi4py']}, MPICH from PyPI, all in `.venv-heat`; pybsp's build: "
             f"{v.get('build', 'not recorded')}.",
             "",
             f"Sizes{' (--quick, not the issue sizes)' if quick else ''}: the sums, the resplit and the "
             f"slice-and-assign on {sizes['square']} x {sizes['square']} float64 split along axis 0; A @ B on two "
             f"{sizes['matmul']} x {sizes['matmul']} float64 matrices, both split along axis 0; the sort of "
             f"{sizes['sort']} float64 (1-D, split). One BLAS thread, one OpenMP thread and one torch thread per "
             f"process. For each nprocs, numpy runs in one process, then one MPI job runs Heat (all rows) and "
             f"then pybsp's MPI backend (all rows). Each time is the median over repetitions (reps: numpy/pybsp/"
             f"Heat; {SLOW_REPETITIONS} where the first took over {SLOW_SECONDS:.0f} s) of the slowest rank's "
             f"time after a barrier. Every row of every system was first checked against numpy on small odd "
             f"shapes (uneven parts); a row that failed is not timed.",
             "",
             "Ratios: pybsp / Heat below 1 means pybsp is faster than Heat; numpy / pybsp above 1 means pybsp "
             "is faster than numpy in one process. Memory: each rank's peak resident set during the row's "
             "repetitions (VmHWM, reset before them; the largest rank), with its rise over the resident set "
             "just before them (inputs already built). pybsp and Heat share each job's processes, so both peaks "
             "include torch and Heat as loaded (a few hundred MiB per rank), and pybsp's, measured after Heat's "
             "rows, also what the allocators kept of Heat's buffers: the rise is the row's own working memory, "
             "the figure to compare.",
             "",
             f"**The figures are noisy**: the machine's {cores} cores are shared with other jobs. Load average "
             f"(1, 5, 15 min) at the start ({found['load_start']}), at the end ({found['load_end']})."]
    for p, run in found["runs"].items():
        over = " (more ranks than cores: oversubscribed)" if int(p) > cores else ""
        lines += ["", f"nprocs = {p}{over}; load at the MPI job's start ({run['load_start']}), at its end "
                  f"({run['load_end']}); {run['seconds']:.0f} s in all:", ""] + table(run)
    lines += ["", "Rerun: `scripts/bench_heat` (the issue's sizes) or `scripts/bench_heat --quick`; "
              "`--nprocs 2 4` chooses the job sizes, `--json FILE` keeps every sample."]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repetitions", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="smaller sizes (see QUICK), for a smoke test")
    parser.add_argument("--report", default=str(ROOT / "docs" / "benchmarks.md"))
    parser.add_argument("--json", help="write every sample here as JSON")
    parser.add_argument("--from-json", help="write the report of the samples in this file (from --json), run nothing")
    parser.add_argument("--mpi-job", help=argparse.SUPPRESS)
    parser.add_argument("--numpy-job", help=argparse.SUPPRESS)
    options = parser.parse_args()
    if options.mpi_job:
        mpi_job(json.loads(options.mpi_job))
        return
    if options.numpy_job:
        print(json.dumps(measure_rows(Numpy(), json.loads(options.numpy_job))))
        return
    found = json.loads(Path(options.from_json).read_text()) if options.from_json else collect(options)
    text = report(found)
    print(text)
    if options.report:
        path = Path(options.report)
        path.write_text(sections.splice(path.read_text() if path.exists() else "", SECTION, text))


if __name__ == "__main__":
    main()
