"""The copy a send makes of an array, two ways: a slice assignment (memcpy,
what the pure Python build does) and bsp.core.streaming_copy.copy_into
(streaming stores, the compiled build's from buffers.STREAMING_FROM on).

`--procs` processes (default 2, as two ranks capture at once) each copy a
numpy array of each size into shared memory of their own, as the fork
backend's capture does, many times, the two ways interleaved; prints the
median milliseconds per copy of the slowest process, and the speedup.

    .venv/bin/python scripts/benchmarks/copies.py [--sizes-mib 1,4,16,64] [--procs 2] [--repetitions 30]

Needs the compiled build (scripts/setup)."""

from __future__ import annotations

import argparse
import mmap
import os
import statistics
import time

import numpy as np

from bsp.core.streaming_copy import copy_into


def copy_times(nbytes: int, repetitions: int) -> dict[str, float]:
    """This process's median seconds per copy of `nbytes`, each way."""
    source = np.ones(nbytes, np.uint8)
    # Four destinations in turn: a copy smaller than the cache does not find its last one there.
    shared = mmap.mmap(-1, 4 * nbytes, flags=mmap.MAP_SHARED | mmap.MAP_ANONYMOUS)
    destinations = [memoryview(shared)[k * nbytes:(k + 1) * nbytes] for k in range(4)]
    for destination in destinations:
        destination[:] = memoryview(source)         # the pages exist, as the arena's do in steady state
    ways = {"memcpy": lambda dest: dest.__setitem__(slice(None), memoryview(source)),
            "streaming": lambda dest: copy_into(dest, memoryview(source))}
    times: dict[str, list[float]] = {way: [] for way in ways}
    for repetition in range(repetitions):
        for way, copy in ways.items():
            start = time.perf_counter()
            copy(destinations[repetition % 4])
            times[way].append(time.perf_counter() - start)
    for destination in destinations:
        destination.release()
    shared.close()
    return {way: statistics.median(found) for way, found in times.items()}


def in_processes(procs: int, nbytes: int, repetitions: int) -> dict[str, float]:
    """`copy_times` in `procs` forked processes at once; the slowest one's medians."""
    readers = []
    for _ in range(procs):
        read, write = os.pipe()
        if os.fork() == 0:
            os.close(read)
            found = copy_times(nbytes, repetitions)
            os.write(write, f"{found['memcpy']} {found['streaming']}".encode())
            os._exit(0)
        os.close(write)
        readers.append(read)
    results = []
    for read in readers:
        with os.fdopen(read) as pipe:
            memcpy, streaming = map(float, pipe.read().split())
        results.append({"memcpy": memcpy, "streaming": streaming})
    while True:
        try:
            os.wait()
        except ChildProcessError:
            break
    return {way: max(found[way] for found in results) for way in ("memcpy", "streaming")}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes-mib", default="1,4,16,64")
    parser.add_argument("--procs", type=int, default=2)
    parser.add_argument("--repetitions", type=int, default=30)
    options = parser.parse_args()
    print(f"{options.procs} processes copying at once, load average (1 min) {os.getloadavg()[0]:.1f}\n")
    print("| MiB per copy | memcpy (ms) | streaming (ms) | memcpy / streaming |\n|---|---|---|---|")
    for mib in map(int, options.sizes_mib.split(",")):
        found = in_processes(options.procs, mib << 20, options.repetitions)
        print(f"| {mib} | {found['memcpy'] * 1e3:.2f} | {found['streaming'] * 1e3:.2f} | "
              f"{found['memcpy'] / found['streaming']:.2f} |")


if __name__ == "__main__":
    main()
