"""Local work per rank of a sparse superstep as p grows (issue 28, item 6):
fork backend, oversubscribed (many more ranks than cores).

Every rank sends one float to each of its two neighbours and reads what
arrived, S times.  Each rank measures the CPU time its process spent over
those supersteps (`time.process_time`): its own work (the engine's passes,
the transport's tables, the messages), the semaphore calls of the barrier,
but not the time it slept waiting for the others, which oversubscription
makes huge and which says nothing about the passes.  The table gives the
median over ranks and the mean (the mean includes the barrier's last
arriver, which wakes the p - 1 others: O(p) once per superstep, O(1) per
rank on average).

    .venv/bin/python scripts/benchmarks/sparse_scaling.py [--nprocs 64,256,1024,4096] [--supersteps 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import bsp


def sparse(world, supersteps: int) -> float:
    """CPU seconds per sparse superstep on this rank."""
    left, right = (world.pid - 1) % world.nprocs, (world.pid + 1) % world.nprocs
    for _ in range(3):                      # warm up: the first supersteps touch fresh memory
        world.send(0.5, left); world.send(0.5, right); world.sync(); world.messages()
    start = time.process_time()
    for _ in range(supersteps):
        world.send(0.5, left)
        world.send(0.5, right)
        world.sync()
        world.messages()
    return (time.process_time() - start) / supersteps


def empty(world, supersteps: int) -> float:
    """CPU seconds per empty superstep on this rank."""
    for _ in range(3):
        world.sync()
    start = time.process_time()
    for _ in range(supersteps):
        world.sync()
    return (time.process_time() - start) / supersteps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", default="64,256,1024,4096")
    parser.add_argument("--supersteps", type=int, default=50)
    options = parser.parse_args()
    print(f"fork backend, {os.cpu_count()} cores, {options.supersteps} supersteps per run; "
          f"CPU time per rank per superstep, us (median over ranks / mean)\n")
    print("| p | sparse (k = 2): median | mean | empty: median | mean | wall per superstep (sparse) |")
    print("|---|---|---|---|---|---|")
    for nprocs in map(int, options.nprocs.split(",")):
        started = time.perf_counter()
        found = {}
        for name, program in (("sparse", sparse), ("empty", empty)):
            began = time.perf_counter()
            per_rank = bsp.run(program, options.supersteps, nprocs=nprocs, sync_timeout=600)
            found[name] = (statistics.median(per_rank) * 1e6, statistics.fmean(per_rank) * 1e6)
            if name == "sparse":
                wall = time.perf_counter() - began
        print(f"| {nprocs} | {found['sparse'][0]:.1f} | {found['sparse'][1]:.1f} | {found['empty'][0]:.1f} | "
              f"{found['empty'][1]:.1f} | {wall / options.supersteps * 1e3:.0f} ms (run {time.perf_counter() - started:.0f} s) |",
              flush=True)


if __name__ == "__main__":
    main()
