"""The workloads, as BSP programs: the same code runs on the fork and the MPI
backend.  Each returns, on every rank, rank 0's list of timings in seconds
(one per repetition, the slowest rank's where it matters); the caller takes
medians."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np

import bsp

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))
import bspbench as bspbench_example  # noqa: E402
import sample_sort as sample_sort_example  # noqa: E402


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


def exchange(world, nbytes: int, repetitions: int, copy: bool = True) -> list[float]:
    """Seconds for a superstep in which every rank sends an array of
    `nbytes` to every other rank and takes what arrived (`copy` False: an
    unbuffered send)."""
    return [sum(phases) for phases in exchange_phases(world, nbytes, repetitions, copy)]


def exchange_phases(world, nbytes: int, repetitions: int, copy: bool = True) -> list[list[float]]:
    """Where the time of `exchange` goes: see `supersteps`."""
    payload = np.ones(nbytes, np.uint8)
    others = [dest for dest in range(world.nprocs) if dest != world.pid]

    def send() -> None:
        for dest in others:
            world.send(payload, dest, copy=copy)

    return supersteps(world, repetitions, send)


ELEMENT_CALLS = ("send", "setitem", "put", "get")


def element_calls(world, count: int, repetitions: int) -> list[list[float]]:
    """Seconds per call of `count` one-element calls to the next rank in a
    superstep, their sync (and reading what arrived) included, for each of
    ELEMENT_CALLS in turn, `repetitions` times (interleaved, so that they
    share the machine's moods): "send" (world.send of a float), "setitem"
    (xs[dest, i] = x), "put" (xs.put(x, dest, i)) and "get" (xs[dest, i],
    a future)."""
    xs = world.coarray(count, dtype=np.float64)
    dest = (world.pid + 1) % world.nprocs
    loops = [_send_loop, _setitem_loop, _put_loop, _get_loop]
    world.sync()
    times = []
    for _ in range(repetitions + 1):            # the first round warms up
        row = []
        for loop in loops:
            world.sync()
            start = time.perf_counter()
            loop(world, xs, dest, 1.5, count)
            row.append((time.perf_counter() - start) / count)
        times.append(row)
    return times[1:]


def _send_loop(world, xs, dest, value, count):
    for _ in range(count):
        world.send(value, dest)
    world.sync()
    world.messages()


def _setitem_loop(world, xs, dest, value, count):
    for i in range(count):
        xs[dest, i] = value
    world.sync()


def _put_loop(world, xs, dest, value, count):
    for i in range(count):
        xs.put(value, dest, i)
    world.sync()


def _get_loop(world, xs, dest, value, count):
    futures = [xs[dest, i] for i in range(count)]
    world.sync()
    return futures


def bspbench(world, maxh: int, niters: int) -> list[list[float]]:
    """examples/bspbench.py: [r (flop/s), g (seconds per word), l (seconds)],
    fitted over h = p..maxh as its bottom line is."""
    rates, times = bspbench_example.bspbench(world, maxh, niters)
    low = min(world.nprocs, maxh)
    g, l = bspbench_example.least_squares(list(range(low, maxh + 1)), times[low:])
    return [[rates[-1][3], g, l]]


def small_records(count: int) -> list[tuple[int, float, str]]:
    """`count` small Python objects: tuples of an int, a float and a short string."""
    return [(i, i * 0.5, f"item {i % 1000}") for i in range(count)]


def shares(items: list, pid: int, nprocs: int) -> list[list]:
    """`items` split evenly over the ranks other than `pid` (none for pid itself)."""
    others = [dest for dest in range(nprocs) if dest != pid] or [pid]
    parts: list[list] = [[] for _ in range(nprocs)]
    for index, dest in enumerate(others):
        parts[dest] = items[index::len(others)]
    return parts


def small_objects(world, count: int, repetitions: int, one_send_each: bool = False) -> list[float]:
    """Seconds for a superstep in which every rank sends `count` small
    objects, split evenly over the other ranks, and reads what arrived: as
    one list per destination, or with one `send` per object."""
    parts = shares(small_records(count), world.pid, world.nprocs)

    def send() -> None:
        for dest, part in enumerate(parts):
            if one_send_each:
                for item in part:
                    world.send(item, dest)
            elif part:
                world.send(part, dest)

    return [sum(phases) for phases in supersteps(world, repetitions, send)]


def supersteps(world, repetitions: int, send) -> list[list[float]]:
    """Time `repetitions` supersteps (after one that warms up), each
    begun by `send()`: per superstep, the seconds in `send` (which captures
    copies), in the sync (the transfer) and in `world.messages()`
    (unpickling what arrived), on this rank."""
    phases = []
    for _ in range(repetitions + 1):
        world.sync()
        start = time.perf_counter()
        send()
        sent = time.perf_counter()
        world.sync()
        synced = time.perf_counter()
        received = world.messages()
        phases.append([sent - start, synced - sent, time.perf_counter() - synced])
        del received
    return phases[1:]


def sample_sort(world, n: int, repetitions: int) -> list[float]:
    """Seconds of examples/sample_sort.py on n keys (the slowest rank's
    time, from its keys in place to its sorted part)."""
    times = []
    for _ in range(repetitions):
        _, seconds = sample_sort_example.sample_sort(world, n)
        times.append(world.allreduce(seconds, op=max))
    return times


def superstep_memory(world, nbytes: int) -> list[float]:
    """The extra peak memory, in bytes, of one superstep in which every
    rank sends an array of `nbytes` to every other rank and keeps what
    arrived: the peak resident set during the superstep minus the resident
    set before it (the payload already made).  The most of any rank."""
    payload = np.ones(nbytes, np.uint8)
    others = [dest for dest in range(world.nprocs) if dest != world.pid]
    world.sync()
    before = reset_peak_memory()
    for dest in others:
        world.send(payload, dest)
    world.sync()
    received = world.messages()
    extra = peak_memory() - before
    del received
    return [world.allreduce(float(extra), op=max)]


def reset_peak_memory() -> int:
    """Reset this process's peak resident set (Linux) and return the
    resident set now, in bytes."""
    with open("/proc/self/clear_refs", "w") as control:
        control.write("5")
    return _status_bytes("VmRSS")


def peak_memory() -> int:
    """This process's peak resident set since the last reset, in bytes."""
    return _status_bytes("VmHWM")


def _status_bytes(field: str) -> int:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    raise RuntimeError(f"no {field} in /proc/self/status")


def sample_sort_profile(n: int, backend: str, nprocs: int | None = None) -> list[list[float]]:
    """Called in the launching process: one run of the sample sort with
    pybsp's profiler on; per superstep, [w_max, time in the sync, h_max]
    (seconds, seconds, bytes)."""
    profiles = []
    bsp.run(sample_sort_example.sample_sort, n, nprocs=nprocs, backend=backend, profile=profiles.append)
    [profile] = profiles
    return np.column_stack([profile.w_max, profile.sync_time, profile.h_max]).tolist()


def small_messages(world, count: int, batches: int, per_batch: int, made_in_loop: bool = False) -> list[float]:
    """Seconds per superstep in which every rank sends `count` small
    messages (floats, one `send` each) to each other rank and reads what
    arrived: the mean of each batch of supersteps (issue 15's "superstep
    that carries data"; raw_mpi.alltoall_objects is its mpi4py twin).

    It sends the same floats every superstep, made once, as the twin sends
    its list made once.  `made_in_loop`: floats made anew by the loop
    (`item + 0.5`), work the twin does not do; this was the row up to
    commit 3072cb6, and is kept beside it (tax_report.py)."""
    others = [dest for dest in range(world.nprocs) if dest != world.pid] or [world.pid]
    items = [item + 0.5 for item in range(count)]
    send, sync, messages = world.send, world.sync, world.messages
    times = []
    for _ in range(batches):
        sync()
        start = time.perf_counter()
        for _ in range(per_batch):
            for dest in others:
                if made_in_loop:
                    for item in range(count):
                        send(item + 0.5, dest)
                else:
                    for item in items:
                        send(item, dest)
            sync()
            messages()
        times.append((time.perf_counter() - start) / per_batch)
    return times
