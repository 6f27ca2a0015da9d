"""Each fork rank limits numpy's thread pools to its share of the cores,
unless the user's environment chose a thread count."""

import pytest
from threadpoolctl import threadpool_info

import bsp
from bsp.launch.cores import usable_cores

pytestmark = pytest.mark.mpi_skip      # under MPI the share is per node, by the job's ranks on it


def pool_threads(world):
    return sorted({pool["num_threads"] for pool in threadpool_info()})


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_each_rank_gets_its_share_of_the_cores(nprocs, monkeypatch):
    for name in bsp.launch.cores.USER_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    share = max(1, usable_cores() // nprocs)
    assert bsp.run(pool_threads, nprocs=nprocs, backend="fork") == [[share]] * nprocs


def test_a_thread_count_chosen_by_the_user_is_left_alone(monkeypatch):
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "7")
    here = pool_threads(None)
    assert bsp.run(pool_threads, nprocs=2, backend="fork") == [here, here]
