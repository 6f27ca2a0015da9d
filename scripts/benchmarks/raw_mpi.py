"""The same workloads in plain mpi4py, written as a good mpi4py user would
(buffers allocated once and reused), for comparison in the same job."""

from __future__ import annotations

import time

import numpy as np
from mpi4py import MPI


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
    size, rank = comm.Get_size(), comm.Get_rank()
    counts = [0 if peer == rank else nbytes for peer in range(size)]
    offsets = [sum(counts[:peer]) for peer in range(size)]
    send = np.ones(max(sum(counts), 1), np.uint8)
    receive = np.empty_like(send)
    times = []
    for repetition in range(repetitions + 1):
        comm.Barrier()
        start = time.perf_counter()
        comm.Alltoallv([send, counts, offsets, MPI.BYTE], [receive, counts, offsets, MPI.BYTE])
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
