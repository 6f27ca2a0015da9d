"""An in-memory loopback transport: the ranks of a run are threads of this
process, exchanging blocks through lists and a threading.Barrier.  It runs
the superstep engine (and World, the collectives, the data objects) with no
process, shared memory or MPI at all, for the unit tests of the engine."""

from __future__ import annotations

import threading
from typing import Any, Callable

from bsp.core.buffers import aligned_empty
from bsp.launch.outcome import Outcome, resolve
from bsp.launch.rank_runner import run_program
from bsp.core.transport import Incoming, Outgoing, Transport

BARRIER_SECONDS = 60        # a test that leaves a rank waiting fails with BrokenBarrierError, not a hang


class Loop:
    """What the ranks of one loopback run share."""

    def __init__(self, nprocs: int):
        self.nprocs = nprocs
        self.barrier = threading.Barrier(nprocs, timeout=BARRIER_SECONDS)
        self.records: list[bytes] = [b""] * nprocs
        self.blocks: list[list[bytes | None]] = [[None] * nprocs for _ in range(nprocs)]     # [source][dest]
        self.exchanges = [0] * nprocs


class LoopbackTransport(Transport):
    def __init__(self, loop: Loop, pid: int):
        self.loop = loop
        self.pid = pid
        self.nprocs = loop.nprocs

    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        return aligned_empty(nbytes).data

    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        loop = self.loop
        loop.records[self.pid] = bytes(record)
        for dest in range(self.nprocs):
            frames = outgoing.get(dest)
            loop.blocks[self.pid][dest] = b"".join(bytes(frame) for frame in frames) if frames else None
        loop.barrier.wait()         # every rank has contributed
        records = b"".join(loop.records)
        incoming: Incoming = {}
        for source in range(self.nprocs):
            block = loop.blocks[source][self.pid]
            if block is None:
                continue
            copy = aligned_empty(len(block))        # the receiver's own, ALIGN-aligned
            copy[:] = memoryview(block)
            incoming[source] = [copy.data]
        loop.exchanges[self.pid] += 1
        loop.barrier.wait()         # every rank has read before the next exchange writes
        return records, incoming




def run_outcomes(program: Callable[..., Any], nprocs: int, *args: Any, **kwargs: Any) -> list[Outcome]:
    """Run `program(world, *args, **kwargs)` on `nprocs` loopback ranks
    (threads) and return their Outcomes in pid order."""
    loop = Loop(nprocs)
    outcomes: list[Outcome | None] = [None] * nprocs

    def rank(pid: int) -> None:
        outcomes[pid] = run_program(LoopbackTransport(loop, pid), program, args, kwargs)

    threads = [threading.Thread(target=rank, args=(pid,), daemon=True) for pid in range(nprocs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(BARRIER_SECONDS * 4)
    assert all(outcome is not None for outcome in outcomes), "a loopback rank did not end"
    return [outcome for outcome in outcomes if outcome is not None]


def run(program: Callable[..., Any], nprocs: int, *args: Any, **kwargs: Any) -> list[Any]:
    """The results in pid order, or the run's error, as bsp.run gives them."""
    return resolve(run_outcomes(program, nprocs, *args, **kwargs))
