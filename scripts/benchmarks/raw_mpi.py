"""The same workloads in plain mpi4py, written as a good mpi4py user would
(buffers allocated once and reused), for comparison in the same job."""

from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI

from programs import peak_memory, reset_peak_memory, shares, small_records


def barrier(comm: MPI.Comm, batches: int, per_batch: int) -> list[float]:
    return _batched(comm, comm.Barrier, batches, per_batch)


def alltoall_counts(comm: MPI.Comm, batches: int, per_batch: int) -> list[float]:
    """Alltoall of an int64 count array, one count per rank: the size
    exchange that starts a superstep."""
    counts = np.zeros(comm.Get_size(), np.int64)
    received = np.zeros_like(counts)
    return _batched(comm, lambda: comm.Alltoall(counts, received), batches, per_batch)


def alltoallv(comm: MPI.Comm, nbytes: int, repetitions: int) -> list[float]:
    """Alltoallv in which every rank sends `nbytes` to every other rank."""
    send, receive, send_spec, receive_spec = _alltoallv_buffers(comm, nbytes)
    return _repeated(comm, lambda: comm.Alltoallv([send, *send_spec], [receive, *receive_spec]), repetitions)


def small_objects(comm: MPI.Comm, count: int, repetitions: int) -> list[float]:
    """Lowercase (pickling) alltoall of lists of `count` small objects per
    rank, split evenly over the other ranks."""
    parts = shares(small_records(count), comm.Get_rank(), comm.Get_size())
    return _repeated(comm, lambda: comm.alltoall(parts), repetitions)


def alltoall_objects(comm: MPI.Comm, count: int, batches: int, per_batch: int) -> list[float]:
    """Lowercase (pickling) alltoall in which every rank sends each other
    rank one float (count 1) or a list of `count` floats, and nothing to
    itself: the twin of programs.small_messages."""
    size, rank = comm.Get_size(), comm.Get_rank()
    items = [item + 0.5 for item in range(count)]
    one = items[0] if count == 1 else items
    parts = [None if peer == rank and size > 1 else one for peer in range(size)]
    return _batched(comm, lambda: comm.alltoall(parts), batches, per_batch)


def superstep_memory(comm: MPI.Comm, nbytes: int) -> list[float]:
    """Extra peak memory of one Alltoallv of `nbytes` to every other rank,
    the receive buffer made for it (see programs.superstep_memory)."""
    size, rank = comm.Get_size(), comm.Get_rank()
    send = np.ones(max(nbytes * (size - 1), 1), np.uint8)
    comm.Barrier()
    before = reset_peak_memory()
    send_spec = _spec(nbytes, size, rank)
    receive = np.empty_like(send)
    comm.Alltoallv([send, *send_spec], [receive, *send_spec])
    extra = peak_memory() - before
    return [comm.allreduce(float(extra), op=MPI.MAX)]


def one_sided(comm: MPI.Comm, count: int, repetitions: int) -> list[list[float]]:
    """Seconds per call of `count` Win.Put of one double into the next
    rank's window between two fences (the fences included), then of as many
    Win.Get, each into an element of its own; `repetitions` times."""
    gotten = np.zeros(count)
    calls = [lambda window, one, dest, i: window.Put(one, dest, i),
             lambda window, one, dest, i: window.Get(gotten[i:i + 1], dest, i)]
    return _one_sided(comm, count, repetitions, calls)


def _one_sided(comm: MPI.Comm, count: int, repetitions: int, calls) -> list[list[float]]:
    memory = np.zeros(count)
    window = MPI.Win.Create(memory, memory.itemsize, comm=comm)
    one = np.array([1.5])
    dest = (comm.Get_rank() + 1) % comm.Get_size()
    times = []
    try:
        for repetition in range(repetitions + 1):       # the first one warms up
            row = []
            for call in calls:
                window.Fence()
                start = time.perf_counter()
                for i in range(count):
                    call(window, one, dest, i)
                window.Fence()
                row.append((time.perf_counter() - start) / count)
            if repetition:
                times.append(row)
    finally:
        window.Free()
    return times


def _alltoallv_buffers(comm: MPI.Comm, nbytes: int):
    size, rank = comm.Get_size(), comm.Get_rank()
    spec = _spec(nbytes, size, rank)
    send = np.ones(max(nbytes * (size - 1), 1), np.uint8)
    return send, np.empty_like(send), spec, spec


def _spec(nbytes: int, size: int, rank: int) -> tuple[list[int], list[int], MPI.Datatype]:
    counts = [0 if peer == rank else nbytes for peer in range(size)]
    offsets = [sum(counts[:peer]) for peer in range(size)]
    return counts, offsets, MPI.BYTE


def _repeated(comm: MPI.Comm, operation, repetitions: int) -> list[float]:
    times = []
    for repetition in range(repetitions + 1):       # the first one warms up
        comm.Barrier()
        start = time.perf_counter()
        operation()
        if repetition:
            times.append(time.perf_counter() - start)
    return times


def _batched(comm: MPI.Comm, operation, batches: int, per_batch: int) -> list[float]:
    times = []
    for _ in range(batches):
        comm.Barrier()
        start = time.perf_counter()
        for _ in range(per_batch):
            operation()
        times.append((time.perf_counter() - start) / per_batch)
    return times
