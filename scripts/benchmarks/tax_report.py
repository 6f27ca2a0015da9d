"""The per-superstep tax (issue 15): what a superstep that carries a little
data costs next to mpi4py doing the same, and the array total exchange
against raw Alltoallv, each as a ratio taken in one run.

- a superstep with 1, 10 and 100 small messages (floats, one `send` each)
  from every rank to every other, read with `messages()`, against mpi4py's
  lowercase `alltoall` of one float or of a list of that many;
- the empty superstep against raw Barrier and Alltoall of counts;
- the array total exchange at 16 KiB .. 64 MiB against raw Alltoallv.

`TAX_HOG=1` in the environment of `scripts/bench` starts one CPU-bound
process beside the ranks for the measurements (the "under load" section);
`plan`, `tables` and `targets` plug into run.py as coarray_report's do.
"""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from typing import Iterator

KIB, MIB, GIB = 1 << 10, 1 << 20, 1 << 30
COUNTS = (1, 10, 100)
MADE_COUNT = 100        # also measured with its floats made in the loop (programs.small_messages)
SIZES = (16 * KIB, 256 * KIB, 4 * MIB, 64 * MIB)


HOG = bool(os.environ.get("TAX_HOG"))


@contextlib.contextmanager
def hog() -> Iterator[None]:
    """With TAX_HOG set: one CPU-bound process runs meanwhile."""
    process = subprocess.Popen([sys.executable, "-c", "while True: pass"]) if HOG else None
    try:
        yield
    finally:
        if process is not None:
            process.kill()
            process.wait()


def load_line(at_start: float) -> str:
    hogging = "; one CPU-bound process ran beside the ranks throughout (TAX_HOG=1)" if HOG else ""
    return (f"Load average (1 min): {at_start:.1f} when the run began, {os.getloadavg()[0]:.1f} when it "
            f"ended{hogging}.")


def plan(quick: bool) -> dict:
    batches, per_batch = (5, 200) if quick else (10, 1000)
    # Up to 1000 exchanges of a size, about 1 GiB sent per rank in all: a
    # steady state.  (With 50, a 16 KiB exchange measured a process's first
    # supersteps, whose receive memory is fresh pages: 22 us against 12.5 us
    # on fork, and raw MPI's buffers are made once.)
    repetitions = {size: max(3, min(1000, GIB // (size * 4))) for size in SIZES}
    if quick:
        repetitions = {size: max(3, count // 5) for size, count in repetitions.items()}
    sync = [batches, per_batch]
    small = {count: [count, batches, max(20, per_batch // max(1, count // 10))] for count in COUNTS}
    return {
        "raw": [("barrier", "barrier", sync), ("alltoall_counts", "alltoall_counts", sync)]
               + [(f"objects|{count}", "alltoall_objects", small[count]) for count in COUNTS]
               + [(f"exchange|{size}", "alltoallv", [size, repetitions[size]]) for size in SIZES],
        "bsp": [("empty_superstep", "empty_superstep", sync)]
               + [(f"messages|{count}", "small_messages", small[count]) for count in COUNTS]
               + [(f"messages_made|{MADE_COUNT}", "small_messages", [*small[MADE_COUNT], True])]
               + [(f"exchange|{size}", "exchange", [size, repetitions[size]]) for size in SIZES],
        "launcher": [],
    }


def tables(get) -> list[str]:
    lines = ["## The per-superstep tax", "",
             "A superstep in which every rank sends n small messages (floats, one `send` each) to every other "
             "rank and reads them with `messages()`, microseconds, next to mpi4py's lowercase `alltoall` of one "
             "float (n = 1) or of a list of n floats, in the same run (lower is better):", "",
             "| n | raw `alltoall` (us) | fork (us) | MPI (us) | fork / raw | MPI / raw |",
             "|---|---|---|---|---|---|"]
    for count in COUNTS:
        raw, fork, mpi = (get(system, f"{'objects' if system == 'raw' else 'messages'}|{count}")
                          for system in ("raw", "fork", "mpi"))
        lines.append(f"| {count} | {raw * 1e6:.1f} | {fork * 1e6:.1f} | {mpi * 1e6:.1f} | "
                     f"{fork / raw:.2f} | {mpi / raw:.2f} |")
    raw = get("raw", f"objects|{MADE_COUNT}")
    fork, mpi = (get(system, f"messages_made|{MADE_COUNT}") for system in ("fork", "mpi"))
    lines += ["", f"The same {MADE_COUNT} messages with their floats made in the loop (`item + 0.5`, which the "
              f"raw twin does not do): fork {fork * 1e6:.1f} us ({fork / raw:.2f}x), MPI {mpi * 1e6:.1f} us "
              f"({mpi / raw:.2f}x)."]
    barrier, counts = get("raw", "barrier"), get("raw", "alltoall_counts")
    fork, mpi = get("fork", "empty_superstep"), get("mpi", "empty_superstep")
    lines += ["", f"Empty superstep: fork {fork * 1e6:.2f} us ({fork / barrier:.2f}x raw Barrier, "
              f"{barrier * 1e6:.2f} us); MPI {mpi * 1e6:.2f} us ({mpi / counts:.2f}x raw Alltoall of counts, "
              f"{counts * 1e6:.2f} us).", "",
              "Total exchange of numpy arrays, throughput relative to raw `Alltoallv` (higher is better):", "",
              "| bytes per rank | raw Alltoallv (GB/s) | fork / raw | MPI / raw |", "|---|---|---|---|"]
    for size in SIZES:
        raw = get("raw", f"exchange|{size}")
        lines.append(f"| {_bytes(size)} | {size / raw / 1e9:.2f} | {raw / get('fork', f'exchange|{size}'):.2f} | "
                     f"{raw / get('mpi', f'exchange|{size}'):.2f} |")
    return lines + [""]


# Issue 28's bounds for a superstep of n messages against raw alltoall: (fork, MPI).
MESSAGE_BOUNDS = {1: (1.2, 1.5), 10: (1.5, 1.5), 100: (2.0, 2.0)}


def targets(get) -> list[tuple[str, float, str, float]]:
    found = []
    for index, (system, name) in enumerate((("fork", "fork"), ("mpi", "MPI"))):
        for count in COUNTS:
            bound = MESSAGE_BOUNDS[count][index]
            found.append((f"{name}: superstep with {count} message(s) per rank <= {bound}x raw alltoall",
                          get(system, f"messages|{count}") / get("raw", f"objects|{count}"), "<=", bound))
        for size, bound in ((16 * KIB, 0.5), (256 * KIB, 0.8), (4 * MIB, 0.9)):
            found.append((f"{name}: {_bytes(size)} exchange >= {bound}x raw Alltoallv",
                          get("raw", f"exchange|{size}") / get(system, f"exchange|{size}"), ">=", bound))
    found.append(("fork: empty superstep <= 1.3x raw Barrier",
                  get("fork", "empty_superstep") / get("raw", "barrier"), "<=", 1.3))
    found.append(("MPI: empty superstep <= 1.5x raw Alltoall of counts",
                  get("mpi", "empty_superstep") / get("raw", "alltoall_counts"), "<=", 1.5))
    big = f"exchange|{64 * MIB}"
    found.append(("MPI: 64 MiB exchange >= 0.9x raw Alltoallv", get("raw", big) / get("mpi", big), ">=", 0.9))
    found.append(("fork: 64 MiB exchange >= 1.0x raw Alltoallv", get("raw", big) / get("fork", big), ">=", 1.0))
    return found


def _bytes(size: int) -> str:
    return f"{size // MIB} MiB" if size >= MIB else f"{size // KIB} KiB"
