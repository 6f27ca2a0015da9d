"""pybsp's fork and MPI backends next to raw mpi4py: same machine, same
nprocs, one run.  Usage: scripts/bench [--nprocs 2] [--rounds 3] [--quick]
[--scaling 1,2,4,8,16] [--report FILE.md] [--plots DIR] [--json FILE.json]
[--only coarrays]
(the report goes to docs/benchmarks.md, the plots to docs/, by default)

Each round measures every workload on the fork backend (in this process),
then starts one MPI job that measures raw mpi4py and pybsp's MPI backend.
The figures are medians of every repetition of every round.  Then, for each
nprocs of --scaling, the BSP machine parameters l and g (bsp.machine, as
bspbench measures them) on both backends, and raw mpi4py's Barrier.
Speed is reported, never asserted."""

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

import coarray_report
import programs
import sections
import tax_report

import bsp
from bsp import machine

HERE = Path(__file__).resolve().parent
DOCS = HERE.parent.parent / "docs"
BSP_COMMAND = Path(sys.executable).parent / "bsp"
KIB, MIB = 1 << 10, 1 << 20
SIZES = [KIB, 16 * KIB, 256 * KIB, 4 * MIB, 64 * MIB]
SMALL_OBJECTS = 100_000
SORT_KEYS = 1 << 24
MEMORY_BYTES = 64 * MIB
LOAD_AT_START = os.getloadavg()[0]
SYSTEMS = {"raw": "raw mpi4py", "fork": "pybsp fork backend", "mpi": "pybsp MPI backend"}


def plan(quick: bool, only: str | None = None) -> dict:
    """What to measure: lists of (key, function, arguments), for raw mpi4py
    (raw_mpi.py) and for pybsp (programs.py, on both backends); `only`
    "coarrays": the coarray part alone (see coarray_report)."""
    if only == "tax":
        return tax_report.plan(quick)
    coarrays = coarray_report.plan(quick, alone=only == "coarrays")
    if only == "coarrays":
        return {**coarrays, "launcher": []}
    work = _main_plan(quick)
    return {part: work[part] + coarrays.get(part, []) for part in work}


def _main_plan(quick: bool) -> dict:
    batches, per_batch = (10, 200) if quick else (20, 1000)
    sync = [batches, per_batch]
    repetitions = {size: max(3, min(50, (256 * MIB) // (size * 4))) for size in SIZES}
    if quick:
        repetitions = {size: max(3, count // 5) for size, count in repetitions.items()}
    objects = [SMALL_OBJECTS // 10 if quick else SMALL_OBJECTS, 3 if quick else 10]
    sort = [SORT_KEYS // 16 if quick else SORT_KEYS, 2 if quick else 5]
    return {
        "raw": [("barrier", "barrier", sync), ("alltoall_counts", "alltoall_counts", sync)]
               + [(f"exchange|{size}", "alltoallv", [size, repetitions[size]]) for size in SIZES]
               + [("small_objects", "small_objects", objects),
                  ("memory", "superstep_memory", [MEMORY_BYTES])],
        "bsp": [("empty_superstep", "empty_superstep", sync)]
               + [(f"exchange|{size}", "exchange", [size, repetitions[size]]) for size in SIZES]
               + [("small_objects", "small_objects", objects),
                  ("small_objects_each", "small_objects", [*objects, True]),
                  ("sample_sort", "sample_sort", sort),
                  ("memory", "superstep_memory", [MEMORY_BYTES]),
                  ("exchange_phases", "exchange_phases", [SIZES[-1], repetitions[SIZES[-1]]])],
        # run in the launching process, with the backend as a keyword: one sample a round
        "launcher": [("sort_profile", "sample_sort_profile", sort[:1])],
    }


def measure_fork(work: dict, nprocs: int) -> dict:
    results = {f"fork|{key}": bsp.run(getattr(programs, function), *args, nprocs=nprocs, backend="fork")[0]
               for key, function, args in work["bsp"]}
    for key, function, args in work["launcher"]:
        results[f"fork|{key}"] = [getattr(programs, function)(*args, backend="fork", nprocs=nprocs)]
    return results


def measure_mpi(work: dict, nprocs: int) -> dict:
    """Run `work` (see mpi_worker.py) as an MPI job of nprocs ranks."""
    command = [str(BSP_COMMAND), "run", "--mpi", "-n", str(nprocs), str(HERE / "mpi_worker.py"), json.dumps(work)]
    done = subprocess.run(command, capture_output=True, text=True, timeout=3600)
    if done.returncode != 0:
        raise RuntimeError(f"the MPI job failed:\n{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def serial_sort(n: int, repetitions: int) -> list[float]:
    """Seconds of single-process np.sort of the first n of the sample sort's keys."""
    keys = programs.sample_sort_example.keys_for(np.arange(n))
    times = []
    for _ in range(repetitions):
        start = time.perf_counter()
        np.sort(keys)
        times.append(time.perf_counter() - start)
    return times


def collect(nprocs: int, rounds: int, quick: bool, only: str | None = None) -> dict:
    work = plan(quick, only)
    samples: dict[str, list] = {}
    sort_arguments = next((args for key, _, args in work["bsp"] if key == "sample_sort"), None)
    for round_number in range(rounds):
        print(f"round {round_number + 1} of {rounds}: fork backend", file=sys.stderr)
        results = measure_fork(work, nprocs)
        print(f"round {round_number + 1} of {rounds}: MPI job (raw mpi4py, then MPI backend)", file=sys.stderr)
        results.update(measure_mpi(work, nprocs))
        if sort_arguments:
            results["serial|sample_sort"] = serial_sort(*sort_arguments)
            results["serial|sample_sort_part"] = serial_sort(sort_arguments[0] // nprocs, sort_arguments[1])
        for key, values in results.items():
            samples.setdefault(key, []).extend(values)
    return {key: _median(values) for key, values in samples.items()}


def _median(values: list) -> float | list:
    """The median of numbers, or elementwise of equal-shaped lists of them."""
    return float(np.median(values)) if np.ndim(values) == 1 else np.median(values, axis=0).tolist()


def scaling(counts: list[int], quick: bool) -> dict:
    """For each nprocs: l and g on both backends, fitted; the time of an
    empty superstep, measured; and raw mpi4py's Barrier."""
    sizes = machine.DEFAULT_SIZES
    repetitions = 20 if quick else 100
    sync = [5, 20 if quick else 100]
    found: dict[str, dict] = {"fork": {}, "mpi": {}, "raw": {}}
    for nprocs in counts:
        print(f"scaling: nprocs = {nprocs}", file=sys.stderr)
        fork = machine.measure(nprocs, "fork", sizes, repetitions)
        empty = bsp.run(programs.empty_superstep, *sync, nprocs=nprocs, backend="fork")[0]
        found["fork"][nprocs] = {"l": fork.l, "g": fork.g, "empty": statistics.median(empty)}
        job = measure_mpi({"raw": [("barrier", "barrier", sync)],
                           "bsp": [("empty_superstep", "empty_superstep", sync)],
                           "machine": [list(sizes), repetitions]}, nprocs)
        found["mpi"][nprocs] = dict(job["machine"], empty=statistics.median(job["mpi|empty_superstep"]))
        found["raw"][nprocs] = {"empty": statistics.median(job["raw|barrier"])}
    return found


def machine_description() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return (f"{platform.node()}: {platform.processor() or platform.machine()}, {cores} usable cores, "
            f"Python {platform.python_version()}, numpy {np.__version__}")


def report(medians: dict, nprocs: int, rounds: int, scaled: dict | None, work: dict, only: str | None = None) -> str:
    def get(system: str, key: str) -> float:
        return medians[f"{system}|{key}"]

    arguments = {key: args for key, _, args in work["bsp"]}

    lines = [f"# pybsp benchmark", "",
             f"Machine: {machine_description()}; nprocs = {nprocs}; medians of {rounds} rounds; "
             f"made by `scripts/bench` on {time.strftime('%Y-%m-%d')}.", ""]
    if only == "tax":
        return "\n".join(lines + [tax_report.load_line(LOAD_AT_START), ""] + tax_report.tables(get)
                         + _targets_lines(nprocs, tax_report.targets(get))) + "\n"
    if only == "coarrays":
        lines += coarray_report.tables(get, nprocs, scaled)
        return "\n".join(lines + _targets_lines(nprocs, coarray_report.targets(get))) + "\n"
    lines += _empty_superstep_table(get)
    lines += _exchange_table(get, nprocs)
    lines += _small_objects_table(get, arguments["small_objects"][0])
    lines += _sort_table(get, arguments["sample_sort"][0])
    lines += _memory_table(get, nprocs)
    lines += _phases_tables(get, nprocs, arguments["sample_sort"][0])
    if scaled:
        lines += _scaling_table(scaled)
    lines += coarray_report.tables(get, nprocs, scaled)
    lines += _targets_table(get, nprocs, scaled)
    return "\n".join(lines) + "\n"


def _empty_superstep_table(get) -> list[str]:
    barrier, counts = get("raw", "barrier"), get("raw", "alltoall_counts")
    lines = ["## Empty superstep", "", "A sync with no traffic, microseconds (lower is better):", "",
             "| system | time | / raw Barrier | / raw Alltoall of counts |", "|---|---|---|---|",
             f"| raw mpi4py Barrier | {barrier * 1e6:.2f} | 1.00 | |",
             f"| raw mpi4py Alltoall (one int64 count per rank) | {counts * 1e6:.2f} | | 1.00 |"]
    return lines + _backend_rows(get, "empty_superstep", lambda label, seconds:
                                 f"| {label} | {seconds * 1e6:.2f} | {seconds / barrier:.2f} | {seconds / counts:.2f} |")


def _backend_rows(get, key: str, row) -> list[str]:
    """One table row per pybsp backend, `row(label, its figure for key)`,
    and the blank line that ends the table."""
    return [row(SYSTEMS[system], get(system, key)) for system in ("fork", "mpi")] + [""]


def _exchange_table(get, nprocs: int) -> list[str]:
    lines = ["## Total exchange of numpy arrays", "",
             "Every rank sends one array of the given size to every other rank (raw: one Alltoallv); "
             "throughput = bytes sent per rank / time, GB/s (higher is better), and g against message size: "
             "the superstep's time per byte, ns (lower is better). "
             "Plot: [benchmark_exchange.png](benchmark_exchange.png).", "",
             "| bytes per rank | raw mpi4py Alltoallv | fork backend | MPI backend | fork / raw | MPI / raw "
             "| g fork (ns/byte) | g MPI (ns/byte) |",
             "|---|---|---|---|---|---|---|---|"]
    for size in SIZES:
        rate = {system: size * (nprocs - 1) / get(system, f"exchange|{size}") for system in SYSTEMS}
        lines.append(f"| {_bytes(size)} | {rate['raw'] / 1e9:.2f} | {rate['fork'] / 1e9:.2f} | "
                     f"{rate['mpi'] / 1e9:.2f} | {rate['fork'] / rate['raw']:.2f} | {rate['mpi'] / rate['raw']:.2f} | "
                     f"{1e9 / rate['fork']:.3f} | {1e9 / rate['mpi']:.3f} |")
    return lines + [""]


def _small_objects_table(get, count: int) -> list[str]:
    raw = get("raw", "small_objects")
    lines = ["## Small Python objects", "",
             f"{count:,} tuples (an int, a float, a short string) per rank per superstep, split over the "
             "other ranks; milliseconds per superstep, and throughput relative to raw lowercase `alltoall` of "
             "the same lists (higher is better):", "",
             "| system | time (ms) | throughput / raw |", "|---|---|---|",
             f"| raw mpi4py `alltoall` of lists | {raw * 1e3:.1f} | 1.00 |"]
    for system in ("fork", "mpi"):
        for key, how in (("small_objects", "one send per list"), ("small_objects_each", "one send per object")):
            seconds = get(system, key)
            lines.append(f"| {SYSTEMS[system]}, {how} | {seconds * 1e3:.1f} | {raw / seconds:.2f} |")
    return lines + [""]


def _sort_table(get, keys: int) -> list[str]:
    serial = get("serial", "sample_sort")
    lines = ["## Sample sort", "",
             f"`examples/sample_sort.py` on {keys:,} int64 keys, from keys in place to sorted parts, "
             "the slowest rank; next to single-process `np.sort` of the same keys:", "",
             "| system | seconds | speed-up over np.sort |", "|---|---|---|",
             f"| np.sort, one process | {serial:.3f} | 1.00 |"]
    return lines + _backend_rows(get, "sample_sort", lambda label, seconds:
                                 f"| {label} | {seconds:.3f} | {serial / seconds:.2f} |")


def _memory_table(get, nprocs: int) -> list[str]:
    sent = MEMORY_BYTES * (nprocs - 1)
    lines = ["## Peak memory of a superstep", "",
             f"Every rank sends M = {_bytes(sent)} (to the other ranks) and keeps what arrived; the extra peak "
             "resident memory of the busiest rank during that superstep, over the payload itself:", "",
             "| system | extra peak (MiB) | / M |", "|---|---|---|"]
    for system in SYSTEMS:
        extra = get(system, "memory")
        lines.append(f"| {SYSTEMS[system]} | {extra / MIB:.1f} | {extra / sent:.3f} |")
    return lines + [""]


def _phases_tables(get, nprocs: int, keys: int) -> list[str]:
    lines = ["## Where the time goes", "",
             f"The {_bytes(SIZES[-1])} exchange, seconds on rank 0 (medians): `send` captures a copy of the "
             "array (messages are copies), `sync` moves the bytes, `messages` unpickles what arrived "
             "(the array data is not copied again):", "",
             "| system | send (copy) | sync (transfer) | messages | total | raw Alltoallv |", "|---|---|---|---|---|---|"]
    raw = get("raw", f"exchange|{SIZES[-1]}")
    for system in ("fork", "mpi"):
        send, sync, messages = get(system, "exchange_phases")
        lines.append(f"| {SYSTEMS[system]} | {send * 1e3:.1f} ms | {sync * 1e3:.1f} ms | {messages * 1e3:.2f} ms "
                     f"| {(send + sync + messages) * 1e3:.1f} ms | {raw * 1e3:.1f} ms |")
    lines += ["", f"The sample sort of {keys:,} keys under pybsp's own profiler (`bsp.run(..., profile=...)`), "
              "per superstep: w_max (the slowest rank's compute), the time in the sync, h_max; next to np.sort "
              f"of all the keys and of one rank's share ({keys // nprocs:,} keys) in one process:", "",
              "| system | superstep | w_max | sync | h_max |", "|---|---|---|---|---|"]
    names = ["keys made", "allgather of samples (w: sampling)", "total exchange of buckets (w: bucketing)",
             "exit (w: concatenate and sort)"]
    for system in ("fork", "mpi"):
        for step, (w, sync, h) in enumerate(get(system, "sort_profile")):
            name = names[step] if step < len(names) else str(step)
            lines.append(f"| {SYSTEMS[system]} | {step}: {name} | {w * 1e3:.1f} ms | {sync * 1e3:.2f} ms | "
                         f"{_bytes(int(h)) if h >= KIB else f'{int(h)} B'} |")
    lines += ["", f"np.sort in one process: all {keys:,} keys {get('serial', 'sample_sort') * 1e3:.1f} ms, "
              f"one rank's share {get('serial', 'sample_sort_part') * 1e3:.1f} ms.", ""]
    return lines


def _scaling_table(scaled: dict) -> list[str]:
    lines = ["## How cost grows with nprocs", "",
             "An empty superstep, measured (raw: mpi4py's Barrier); l (seconds per sync) and g (seconds per "
             "byte of an h-relation) fitted as bspbench does, T(h) = l + g*h over h from 64 B to 4 MiB per rank "
             "(each point weighted by 1/T; l: the fixed cost of a superstep that carries data). "
             "More ranks than the 2 cores are oversubscribed. "
             "Plot: [benchmark_scaling.png](benchmark_scaling.png).", "",
             "| nprocs | raw Barrier (us) | fork: empty superstep (us) | MPI: empty superstep (us) "
             "| fork l (us) | MPI l (us) | fork g (ns/byte) | MPI g (ns/byte) |",
             "|---|---|---|---|---|---|---|---|"]
    for nprocs in sorted(scaled["fork"], key=int):
        fork, mpi, raw = (scaled[system][nprocs] for system in ("fork", "mpi", "raw"))
        lines.append(f"| {nprocs} | {raw['empty'] * 1e6:.1f} | {fork['empty'] * 1e6:.1f} | {mpi['empty'] * 1e6:.1f} | "
                     f"{fork['l'] * 1e6:.1f} | {mpi['l'] * 1e6:.1f} | {fork['g'] * 1e9:.3f} | {mpi['g'] * 1e9:.3f} |")
    return lines + [""]


def _targets_table(get, nprocs: int, scaled: dict | None) -> list[str]:
    big = f"exchange|{SIZES[-1]}"
    sent = MEMORY_BYTES * (nprocs - 1)
    targets = [
        ("fork: empty superstep <= 2x raw Barrier", get("fork", "empty_superstep") / get("raw", "barrier"), "<=", 2),
        ("fork: 64 MiB exchange throughput >= 1.0x raw Alltoallv", get("raw", big) / get("fork", big), ">=", 1.0),
        ("MPI: empty superstep <= 1.5x raw Alltoall of counts",
         get("mpi", "empty_superstep") / get("raw", "alltoall_counts"), "<=", 1.5),
        ("MPI: 64 MiB exchange throughput >= 0.9x raw Alltoallv", get("raw", big) / get("mpi", big), ">=", 0.9),
        ("fork: small objects >= 0.9x raw alltoall (one send per list)",
         get("raw", "small_objects") / get("fork", "small_objects"), ">=", 0.9),
        ("MPI: small objects >= 0.9x raw alltoall (one send per list)",
         get("raw", "small_objects") / get("mpi", "small_objects"), ">=", 0.9),
        ("fork: extra peak memory <= 2M", get("fork", "memory") / sent, "<=", 2),
        ("MPI: extra peak memory <= 2M", get("mpi", "memory") / sent, "<=", 2),
        ("sample sort, fork: >= 1.6x np.sort", get("serial", "sample_sort") / get("fork", "sample_sort"), ">=", 1.6),
        ("sample sort, MPI: >= 1.6x np.sort", get("serial", "sample_sort") / get("mpi", "sample_sort"), ">=", 1.6),
    ]
    if scaled and 16 in scaled["fork"]:
        targets.append(("fork, 16 ranks: empty superstep < 1 ms (in ms)", scaled["fork"][16]["empty"] * 1e3, "<", 1))
    return _targets_lines(nprocs, targets + coarray_report.targets(get))


def _targets_lines(nprocs: int, targets: list[tuple[str, float, str, float]]) -> list[str]:
    lines = ["## Targets", "", f"At nprocs = {nprocs} (16 where named), from this run:", "",
             "| target | measured | met |", "|---|---|---|"]
    for name, value, relation, bound in targets:
        met = {"<=": value <= bound, ">=": value >= bound, "<": value < bound}[relation]
        lines.append(f"| {name} | {value:.2f} | {'yes' if met else 'no'} |")
    return lines + [""]


def plots(medians: dict, nprocs: int, scaled: dict | None, directory: Path) -> None:
    """benchmark_exchange.png (time against bytes per rank, log-log, a line
    per system) and benchmark_scaling.png (l against nprocs)."""
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(6.4, 4.4))
    for system, label in SYSTEMS.items():
        axes.plot(SIZES, [medians[f"{system}|exchange|{size}"] for size in SIZES], marker="o", label=label)
    axes.set(xscale="log", yscale="log", xlabel="bytes sent per rank", ylabel="seconds per superstep",
             title=f"Total exchange, nprocs = {nprocs}")
    axes.legend()
    axes.grid(True, which="both", alpha=0.3)
    figure.tight_layout()
    figure.savefig(directory / "benchmark_exchange.png", dpi=110)
    if scaled:
        figure, axes = plt.subplots(figsize=(6.4, 4.4))
        counts = sorted(scaled["fork"], key=int)
        for system, key, label in (("raw", "empty", "raw mpi4py Barrier"), ("fork", "empty", "pybsp fork: empty superstep"),
                                   ("mpi", "empty", "pybsp MPI: empty superstep"), ("fork", "l", "pybsp fork: fitted l"),
                                   ("mpi", "l", "pybsp MPI: fitted l")):
            axes.plot(counts, [scaled[system][n][key] for n in counts], marker="o", label=label,
                      linestyle="--" if key == "l" else "-")
        axes.set(xscale="log", yscale="log", xlabel="nprocs (2 cores: oversubscribed beyond 2)",
                 ylabel="seconds per sync", title="Sync cost against nprocs")
        axes.set_xticks(counts, labels=[str(n) for n in counts])
        axes.legend()
        axes.grid(True, which="both", alpha=0.3)
        figure.tight_layout()
        figure.savefig(directory / "benchmark_scaling.png", dpi=110)


def _bytes(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="fewer repetitions and smaller sizes, for a smoke test")
    parser.add_argument("--scaling", default="1,2,4,8,16", help="nprocs for l and g ('' to skip)")
    parser.add_argument("--report", default=str(DOCS / "benchmarks.md"), help="write the markdown report here")
    parser.add_argument("--plots", default=str(DOCS), help="write the PNG plots into this directory")
    parser.add_argument("--json", help="write the medians here as JSON")
    parser.add_argument("--only", choices=["coarrays", "tax"], help="measure and report one part alone")
    options = parser.parse_args()
    with tax_report.hog():
        medians = collect(options.nprocs, options.rounds, options.quick, options.only)
    scaled = scaling([int(n) for n in options.scaling.split(",")], options.quick) if options.scaling else None
    text = report(medians, options.nprocs, options.rounds, scaled, plan(options.quick, options.only), options.only)
    print(text)
    if options.report:
        old = Path(options.report).read_text() if Path(options.report).exists() else ""
        if options.only == "tax":       # a section of the report, the rest kept as it is
            name = "superstep tax, under load" if tax_report.HOG else "superstep tax"
            Path(options.report).write_text(sections.splice(old, name, text.split("\n", 2)[2]))
        else:
            Path(options.report).write_text(sections.carried(old, text))     # keep other scripts' sections
    if options.plots and not options.only:
        plots(medians, options.nprocs, scaled, Path(options.plots))
    if options.json:
        Path(options.json).write_text(json.dumps({"medians": medians, "scaling": scaled}, indent=1))


if __name__ == "__main__":
    main()
