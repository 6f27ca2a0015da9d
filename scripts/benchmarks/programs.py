"""The workloads, as BSP programs: the same code runs on the fork and the MPI
backend.  Each returns rank 0's list of timings in seconds (one per
repetition); the caller takes medians."""

from __future__ import annotations

import time

import numpy as np


def empty_superstep(world, batches: int, per_batch: int) -> list[float]:
    """Seconds per sync with no traffic: the mean of each batch of syncs."""
    times = []
    for _ in range(batches):
        world.sync()
        start = time.perf_counter()
        for _ in range(per_batch):
            world.sync()
        times.append((time.perf_counter() - start) / per_batch)
    return times


def exchange(world, nbytes: int, repetitions: int) -> list[float]:
    """Seconds for a superstep in which every rank sends an array of
    `nbytes` to every other rank and takes what arrived."""
    payload = np.ones(nbytes, np.uint8)
    others = [dest for dest in range(world.nprocs) if dest != world.pid]
    times = []
    for repetition in range(repetitions + 1):      # the first one warms up
        world.sync()
        start = time.perf_counter()
        for dest in others:
            world.send(payload, dest)
        world.sync()
        received = world.messages()
        elapsed = time.perf_counter() - start
        del received
        if repetition:
            times.append(elapsed)
    return times
