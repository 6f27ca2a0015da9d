"""Collectives against serial computations; each is one superstep."""

import functools
import operator

import numpy as np
import pytest

from bsp.testing import spmd

ALL_NPROCS = [1, 2, 3, 4, 16]


def value_of(pid):
    return (pid * 7 + 3) % 11


@spmd(nprocs=ALL_NPROCS)
def test_broadcast(world):
    for root in {0, world.nprocs - 1}:
        obj = {"from": world.pid, "data": list(range(root + 3))} if world.pid == root else None
        assert world.broadcast(obj, root=root) == {"from": root, "data": list(range(root + 3))}
    assert world.superstep == len({0, world.nprocs - 1})


@spmd(nprocs=ALL_NPROCS)
def test_reduce_and_allreduce(world):
    values = [value_of(pid) for pid in range(world.nprocs)]
    root = world.nprocs - 1
    reduced = world.reduce(value_of(world.pid), root=root)
    assert reduced == (sum(values) if world.pid == root else None)
    assert world.allreduce(value_of(world.pid)) == sum(values)
    assert world.allreduce(value_of(world.pid), op=max) == max(values)
    assert world.allreduce(value_of(world.pid), op=operator.mul) == functools.reduce(operator.mul, values)


@spmd(nprocs=ALL_NPROCS)
def test_non_commutative_ops_combine_in_pid_order(world):
    letters = "abcdefghijklmnopq"
    expected = letters[:world.nprocs]
    assert world.allreduce(letters[world.pid]) == expected
    assert world.reduce(letters[world.pid], root=0) == (expected if world.pid == 0 else None)
    assert world.scan(letters[world.pid]) == expected[:world.pid + 1]


@spmd(nprocs=ALL_NPROCS)
def test_numpy_ufuncs_combine_arrays_elementwise(world):
    mine = np.arange(5, dtype=np.float64) * (world.pid + 1)
    total = sum(np.arange(5, dtype=np.float64) * (pid + 1) for pid in range(world.nprocs))
    assert np.array_equal(world.allreduce(mine, op=np.add), total)
    assert np.array_equal(world.allreduce(mine, op=np.maximum), np.arange(5) * world.nprocs)
    big = np.full(100_000, world.pid, dtype=np.int64)      # travels out-of-band
    assert np.array_equal(world.allreduce(big, op=np.add), np.full(100_000, sum(range(world.nprocs))))


@spmd(nprocs=ALL_NPROCS)
def test_gather_and_allgather(world):
    expected = [("rank", pid) for pid in range(world.nprocs)]
    assert world.allgather(("rank", world.pid)) == expected
    root = world.nprocs // 2
    gathered = world.gather(("rank", world.pid), root=root)
    assert gathered == (expected if world.pid == root else None)


@spmd(nprocs=ALL_NPROCS)
def test_scatter(world):
    root = world.nprocs - 1
    objs = [f"for {pid}" for pid in range(world.nprocs)] if world.pid == root else None
    assert world.scatter(objs, root=root) == f"for {world.pid}"


@spmd(nprocs=ALL_NPROCS)
def test_alltoall(world):
    received = world.alltoall([(world.pid, dest) for dest in range(world.nprocs)])
    assert received == [(source, world.pid) for source in range(world.nprocs)]


@spmd(nprocs=ALL_NPROCS)
def test_scan_is_an_inclusive_prefix(world):
    values = [value_of(pid) for pid in range(world.nprocs)]
    assert world.scan(value_of(world.pid)) == sum(values[:world.pid + 1])
    assert world.scan(value_of(world.pid), op=max) == max(values[:world.pid + 1])


@spmd(nprocs=[3])
def test_a_collective_ends_the_superstep_and_delivers_sends(world):
    world.send(("before", world.pid), 0)
    assert world.allreduce(1) == 3
    expected = [(source, ("before", source)) for source in range(3)] if world.pid == 0 else []
    assert world.messages() == expected
    assert world.superstep == 1


@spmd(nprocs=[2])
def test_results_are_copies(world):
    mine = [world.pid]
    gathered = world.allgather(mine)
    assert gathered[world.pid] == mine and gathered[world.pid] is not mine


@pytest.mark.parametrize("call, error, message", [
    (lambda w: w.broadcast(1, root=5), ValueError, "root 5 is out of range"),
    (lambda w: w.reduce(1, root=-1), ValueError, "root -1 is out of range"),
    (lambda w: w.gather(1, root="0"), TypeError, "root must be an integer pid, not 'str'"),
    (lambda w: w.allreduce(1, op="+"), TypeError, "op must be callable, not 'str'"),
    (lambda w: w.scatter([1], root=0), ValueError, "expected 2, got 1"),
    (lambda w: w.scatter(5, root=0), TypeError, "must be a sequence of 2 objects"),
    (lambda w: w.alltoall([1, 2, 3]), ValueError, "expected 2, got 3"),
])
def test_bad_arguments_raise_at_the_call_on_the_calling_rank(call, error, message):
    @spmd(nprocs=[2])
    def body(world):
        if world.pid == 0:
            with pytest.raises(error, match=message):
                call(world)
    body()
