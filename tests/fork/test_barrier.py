"""bsp.fork.barrier: no rank leaves a barrier before every rank has reached
it, round after round, for both barriers (dissemination when every rank has
a core, central when ranks share cores)."""

from __future__ import annotations

import threading

import pytest

from bsp.fork.barrier import CentralBarrier, DisseminationBarrier

from forkthreads import on_threads, region_and_barrier

ROUNDS = 30


@pytest.mark.parametrize("nprocs, cores, kind", [(1, 1, DisseminationBarrier), (3, 4, DisseminationBarrier),
                                                 (5, 8, DisseminationBarrier), (4, 1, CentralBarrier),
                                                 (7, 2, CentralBarrier)])
def test_no_rank_leaves_a_round_before_all_arrived(nprocs: int, cores: int, kind: type) -> None:
    arrivals = [0] * ROUNDS
    lock = threading.Lock()

    def rank(barrier_pid: int) -> list[int]:
        seen = []
        for step in range(ROUNDS):
            with lock:
                arrivals[step] += 1
            barrier.wait(barrier_pid)
            seen.append(arrivals[step])          # every rank arrived at this round before anyone left it
        return seen

    with region_and_barrier(nprocs, cores) as (_, barrier):
        assert type(barrier) is kind
        results = on_threads(nprocs, rank)
    assert results == [[nprocs] * ROUNDS] * nprocs
