"""Checkpoint throughput: world.save and world.restore of a DistArray, in
GB/s, next to np.save and np.load of the same array from one process, in
the same run, on the same filesystem.

Each save is a whole checkpoint: every rank writes its block and fsyncs it,
and rank 0 commits (manifest, LATEST, removal of the previous checkpoint).
np.save is shown both without fsync (what it does by default) and with one.
Restores read what was just written, from the page cache, as np.load does.
Times are medians of --rounds repetitions; nothing is asserted.

    .venv/bin/python scripts/benchmarks/checkpoint.py [--mib 256] [--nprocs 2] [--rounds 5]

The report replaces the "Checkpoint" section of docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import bsp
from bsp import DistArray

DOCS = Path(__file__).resolve().parent.parent.parent / "docs"
HEADING = "## Checkpoint save and restore"


def timed_checkpoints(world, n: int, columns: int, rounds: int, restore_only: bool):
    """Seconds of each save (or restore), slowest rank, measured between
    barriers so that every rank's part is included."""
    times = []
    plate = None if restore_only else DistArray.from_function(
        world, (n, columns), lambda rows: np.add.outer(rows * 1.0, np.arange(columns)))
    for _ in range(rounds):
        world.sync()
        start = time.perf_counter()
        if restore_only:
            world.restore()
        else:
            world.save(plate=plate, step=1)
        world.sync()                    # rank 0's commit is part of the save
        times.append(time.perf_counter() - start)
    return times


def numpy_baseline(array: np.ndarray, directory: Path, rounds: int) -> dict[str, float]:
    """Median seconds of np.save (without and with fsync) and np.load."""
    path = directory / "plate.npy"
    results: dict[str, list[float]] = {"np.save": [], "np.save + fsync": [], "np.load": []}
    for _ in range(rounds):
        path.unlink(missing_ok=True)
        start = time.perf_counter()
        np.save(path, array)
        results["np.save"].append(time.perf_counter() - start)
        path.unlink()
        start = time.perf_counter()
        with open(path, "wb") as file:
            np.save(file, array)
            file.flush()
            os.fsync(file.fileno())
        results["np.save + fsync"].append(time.perf_counter() - start)
        start = time.perf_counter()
        np.load(path)
        results["np.load"].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in results.items()}


def measure(mib: int, nprocs: int, rounds: int, restore_counts: list[int]) -> dict[str, float]:
    columns = 512
    n = mib * (1 << 20) // (8 * columns)
    base = Path(tempfile.mkdtemp(prefix="pybsp-checkpoint-bench-"))
    try:
        directory = base / "ck"
        medians = {}
        saves = bsp.run(timed_checkpoints, n, columns, rounds, False, nprocs=nprocs, checkpoint=directory)
        medians[f"world.save, {nprocs} ranks"] = statistics.median(saves[0])
        for count in restore_counts:
            restores = bsp.run(timed_checkpoints, n, columns, rounds, True, nprocs=count, checkpoint=directory)
            medians[f"world.restore, {count} ranks (saved by {nprocs})"] = statistics.median(restores[0])
        array = np.add.outer(np.arange(n) * 1.0, np.arange(columns))
        medians.update(numpy_baseline(array, base, rounds))
        return {"bytes": n * columns * 8, **medians}
    finally:
        shutil.rmtree(base, ignore_errors=True)


def report(results: dict[str, float], rounds: int) -> str:
    nbytes = results.pop("bytes")
    reference = {"save": results["np.save"], "restore": results["np.load"]}
    lines = [HEADING, "",
             f"A {nbytes >> 20} MiB float64 DistArray (block rows) saved with `world.save` and read back with "
             f"`world.restore`, against `np.save` / `np.load` of the same array from one process, on the same "
             f"filesystem; medians of {rounds} rounds, GB/s = bytes / time (higher is better). A save includes "
             f"every rank's fsync and rank 0's commit; restores read from the page cache, as np.load does. "
             f"Made by `scripts/benchmarks/checkpoint.py` on {time.strftime('%Y-%m-%d')}.", "",
             "| operation | time | GB/s | / np.save or np.load |", "|---|---|---|---|"]
    for name, seconds in results.items():
        kind = "restore" if "restore" in name or "load" in name else "save"
        lines.append(f"| {name} | {seconds * 1e3:.0f} ms | {nbytes / seconds / 1e9:.2f} | "
                     f"{reference[kind] / seconds:.2f} |")
    return "\n".join(lines) + "\n"


def replace_section(path: Path, section: str) -> None:
    """Put `section` in place of the old one in `path`, or at its end."""
    text = path.read_text() if path.exists() else ""
    start = text.find(HEADING)
    if start < 0:
        text = text.rstrip("\n") + "\n\n" + section
    else:
        end = text.find("\n## ", start + len(HEADING))
        text = text[:start] + section + ("" if end < 0 else text[end:])
    path.write_text(text)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mib", type=int, default=256)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--restore-on", default="1,2,3", help="nprocs of the restores")
    parser.add_argument("--report", default=str(DOCS / "benchmarks.md"), help="the report to update ('' not to)")
    options = parser.parse_args()
    results = measure(options.mib, options.nprocs, options.rounds, [int(n) for n in options.restore_on.split(",")])
    section = report(results, options.rounds)
    print(section)
    if options.report:
        replace_section(Path(options.report), section)


if __name__ == "__main__":
    main()
