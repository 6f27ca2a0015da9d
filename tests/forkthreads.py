"""The fork backend's pieces (bsp.fork.shared, barrier, transport) with its
ranks as threads of this process: the shared region and the semaphores work
the same between threads as between forked processes, so their unit tests
need no fork."""

from __future__ import annotations

import gc
import os
import threading
from contextlib import contextmanager
from typing import Any, Callable, Iterator

from bsp.fork.barrier import Barrier, make_barrier
from bsp.fork.shared import SharedRegion

JOIN_SECONDS = 120


@contextmanager
def region_and_barrier(nprocs: int, cores: int) -> Iterator[tuple[SharedRegion, Barrier]]:
    """A SharedRegion and the barrier `make_barrier` chooses for `cores` cores."""
    region = SharedRegion(nprocs)
    barrier = make_barrier(region, cores, 1e-4)
    # A waiting rank exits when its parent is no longer the launching process
    # (the launcher died); here the "ranks" are threads of the launcher itself.
    barrier._launcher = os.getppid()        # type: ignore[attr-defined]
    try:
        yield region, barrier
    finally:
        barrier.close()
        gc.collect()            # the ranks' views of the mapping, before it is unmapped
        region.close()


def on_threads(nprocs: int, rank: Callable[[int], Any]) -> list[Any]:
    """rank(pid) on `nprocs` threads at once; their results in pid order
    (re-raising the first exception a rank raised)."""
    results: list[Any] = [None] * nprocs
    errors: list[BaseException] = []

    def run(pid: int) -> None:
        try:
            results[pid] = rank(pid)
        except BaseException as error:          # reported below, in the test's thread
            errors.append(error)

    threads = [threading.Thread(target=run, args=(pid,), daemon=True) for pid in range(nprocs)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(JOIN_SECONDS)
    assert not any(thread.is_alive() for thread in threads), "a rank did not finish"
    if errors:
        raise errors[0]
    return results
