"""Local work per rank of a sparse superstep as p grows (issue 28, item 6):
fork backend, oversubscribed (many more ranks than cores).

Every rank sends one float to each of its two neighbours and reads what
arrived, S times (and, for comparison, S empty supersteps).  Each rank
measures the CPU time its process spent over those supersteps
(`time.process_time`), outside the barrier's `wait`: its own work (the
engine's passes, the transport's tables, the messages, and what the
transport does under the barrier's lock as it arrives), not the barrier,
whose cost is the machine's l (under oversubscription a rank spends most of
the superstep asleep there, and the last to arrive wakes the p - 1 others).
The table gives the median over ranks and the mean.

    .venv/bin/python scripts/benchmarks/sparse_scaling.py [--nprocs 64,256,1024,4096] [--supersteps 50]
"""

from __future__ import annotations

import argparse
import os
import statistics
import time

import bsp
from bsp.fork import barrier

_in_barrier = [0.0]     # CPU seconds this rank spent in barrier waits


def _counted(wait):
    """`wait`, counting its CPU time but for that of `on_arrival` (the
    transport's own work under the barrier's lock, which is local work)."""
    def counted(self, pid: int, on_arrival=None) -> None:
        def timed_arrival(first: bool) -> None:
            began = time.process_time()
            on_arrival(first)
            _in_barrier[0] -= time.process_time() - began
        start = time.process_time()
        try:
            if on_arrival is None:
                wait(self, pid)
            else:
                wait(self, pid, timed_arrival)
        finally:
            _in_barrier[0] += time.process_time() - start
    return counted


for _kind in (barrier.DisseminationBarrier, barrier.CentralBarrier):
    _kind.wait = _counted(_kind.wait)


def _local(start: float, supersteps: int) -> float:
    return (time.process_time() - start - _in_barrier[0]) / supersteps


def sparse(world, supersteps: int) -> float:
    """CPU seconds per sparse superstep on this rank."""
    left, right = (world.pid - 1) % world.nprocs, (world.pid + 1) % world.nprocs
    for _ in range(3):                      # warm up: the first supersteps touch fresh memory
        world.send(0.5, left); world.send(0.5, right); world.sync(); world.messages()
    _in_barrier[0] = 0.0
    start = time.process_time()
    for _ in range(supersteps):
        world.send(0.5, left)
        world.send(0.5, right)
        world.sync()
        world.messages()
    return _local(start, supersteps)


def empty(world, supersteps: int) -> float:
    """CPU seconds per empty superstep on this rank."""
    for _ in range(3):
        world.sync()
    _in_barrier[0] = 0.0
    start = time.process_time()
    for _ in range(supersteps):
        world.sync()
    return _local(start, supersteps)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", default="64,256,1024,4096")
    parser.add_argument("--supersteps", type=int, default=50)
    options = parser.parse_args()
    print(f"fork backend, {os.cpu_count()} cores, {options.supersteps} supersteps per run; "
          f"CPU time per rank per superstep outside the barrier, us (median over ranks / mean)\n")
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
