"""Groups (world.split, grid.along): every group collective against a
serial model, over random splits; the sync rules for group collectives; and
the traffic of a group collective, which stays inside its groups."""

import functools
import operator
import os

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsp
from bsp.core import wire
from bsp.launch.bsp_run import max_nprocs, run_with_timeout
from bsp.core.sync_record import Kind
from bsp.testing import require_nprocs, spmd

LIMIT = 60.0
MOST = min(5, max_nprocs() or 5)
KINDS = ("broadcast", "reduce", "allreduce", "gather", "allgather", "scatter", "alltoall", "scan",
         "matrix allreduce", "matrix scan")


def run(program, *args, nprocs):
    require_nprocs(nprocs)
    return run_with_timeout(program, args, {}, nprocs=nprocs, timeout=LIMIT)


# -- a serial model of split and the group collectives ----------------------

def groups_of(colors, keys):
    """{color: world pids ordered by (key, pid)}: what split makes."""
    groups = {}
    for pid, color in enumerate(colors):
        groups.setdefault(color, []).append(pid)
    order = lambda pid: (pid if keys[pid] is None else keys[pid], pid)     # noqa: E731
    return {color: sorted(pids, key=order) for color, pids in groups.items()}


def root_of(seed, ranks):
    """Each group's root, from the seed and the group: groups differ."""
    return (seed + ranks[0]) % len(ranks)


def matrix(text):
    """A 2x2 integer matrix from a contribution: matrix products of these do
    not commute, so a fold in the wrong order shows."""
    v = sum(map(ord, text)) % 7
    return np.array([[v, 1], [1, 0]], dtype=np.int64)


def call(group, kind, seed, mine):
    """Make the collective `kind` on this rank's `group`."""
    root = root_of(seed, group.ranks)
    return {
        "broadcast": lambda: group.broadcast(mine if group.pid == root else None, root=root),
        "reduce": lambda: group.reduce(mine, root=root),
        "allreduce": lambda: group.allreduce(mine),
        "gather": lambda: group.gather(mine, root=root),
        "allgather": lambda: group.allgather(mine),
        "scatter": lambda: group.scatter([mine + str(d) for d in range(group.nprocs)] if group.pid == root
                                         else None, root=root),
        "alltoall": lambda: group.alltoall([mine + str(d) for d in range(group.nprocs)]),
        "scan": lambda: group.scan(mine),
        "matrix allreduce": lambda: group.allreduce(matrix(mine), op=np.matmul).tolist(),
        "matrix scan": lambda: group.scan(matrix(mine), op=np.matmul).tolist(),
    }[kind]()


def expected(kind, seed, ranks, pid, values):
    """What `call` returns on world pid `pid`, of the group `ranks`, computed serially."""
    mine = [values[rank] for rank in ranks]        # contributions in group-pid order
    me, root = ranks.index(pid), root_of(seed, ranks)
    product = lambda xs: functools.reduce(np.matmul, map(matrix, xs)).tolist()   # noqa: E731
    return {
        "broadcast": lambda: mine[root],
        "reduce": lambda: "".join(mine) if me == root else None,
        "allreduce": lambda: "".join(mine),
        "gather": lambda: mine if me == root else None,
        "allgather": lambda: mine,
        "scatter": lambda: mine[root] + str(me),
        "alltoall": lambda: [source + str(me) for source in mine],
        "scan": lambda: "".join(mine[:me + 1]),
        "matrix allreduce": lambda: product(mine),
        "matrix scan": lambda: product(mine[:me + 1]),
    }[kind]()


def splits(nprocs):
    color = st.integers(0, 2)
    key = st.one_of(st.none(), st.integers(-3, 3))
    collective = st.tuples(st.sampled_from(KINDS), st.integers(0, 10),
                           st.lists(st.text("abc", max_size=2), min_size=nprocs, max_size=nprocs))
    return st.tuples(st.lists(color, min_size=nprocs, max_size=nprocs), st.lists(key, min_size=nprocs, max_size=nprocs),
                     st.lists(collective, min_size=1, max_size=4))


def plans():
    return st.integers(1, MOST).flatmap(lambda n: st.tuples(st.just(n), st.lists(splits(n), min_size=1, max_size=2)))


def execute(world, plan):
    log = []
    for colors, keys, collectives in plan:
        group = world.split(colors[world.pid], keys[world.pid])
        log.append(group.ranks)
        for kind, seed, values in collectives:
            log.append(call(group, kind, seed, values[world.pid]))
    return log


def model(nprocs, plan):
    logs = [[] for _ in range(nprocs)]
    for colors, keys, collectives in plan:
        groups = groups_of(colors, keys)
        for pid in range(nprocs):
            ranks = groups[colors[pid]]
            logs[pid].append(tuple(ranks))
            logs[pid] += [expected(kind, seed, ranks, pid, values) for kind, seed, values in collectives]
    return logs


@settings(max_examples=int(os.environ.get("BSP_PROPERTY_EXAMPLES", 40)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow])
@given(plans())
def test_group_collectives_over_random_splits_match_the_serial_model(nprocs_and_plan):
    nprocs, plan = nprocs_and_plan
    assert run(execute, plan, nprocs=nprocs) == model(nprocs, plan)


# -- what a group is --------------------------------------------------------

@spmd(nprocs=[1, 2, 3, 4])
def test_split_orders_by_key_then_world_pid_and_costs_one_superstep(world):
    group = world.split(world.pid % 2, key=-(world.pid // 2))
    assert world.superstep == 1
    mine = [pid for pid in range(world.nprocs) if pid % 2 == world.pid % 2]
    assert group.ranks == tuple(sorted(mine, key=lambda pid: (-(pid // 2), pid)))
    assert group.nprocs == len(mine) and group.ranks[group.pid] == world.pid
    assert world.split("all").ranks == tuple(range(world.nprocs))       # key None: world order
    assert world.split(world.pid).ranks == (world.pid,)


@spmd(nprocs=[2, 4])
def test_a_group_collective_is_one_superstep_and_delivers_what_was_sent_before_it(world):
    group = world.split(world.pid % 2)
    world.send(("hello", world.pid), (world.pid + 1) % world.nprocs)
    before = world.superstep
    assert group.allreduce(1) == group.nprocs
    assert world.superstep == before + 1
    source = (world.pid - 1) % world.nprocs
    assert world.messages() == [(source, ("hello", source))]


@spmd(nprocs=[4])
def test_groups_of_one_split_may_name_different_roots(world):
    group = world.split(world.pid // 2)            # {0, 1} and {2, 3}
    root = world.pid // 2                          # group {0, 1} roots at 0, {2, 3} at 1
    assert group.broadcast(f"from {world.pid}", root=root) == f"from {group.ranks[root]}"


# -- the sync rules ---------------------------------------------------------

def mismatch_sites(program, nprocs):
    with pytest.raises(bsp.SyncMismatchError) as caught:
        run(program, nprocs=nprocs)
    return caught.value.call_sites


def line_of(function, text):
    """The file:line of the line of `function`'s source that contains `text`."""
    import inspect
    lines, first = inspect.getsourcelines(function)
    return f"{inspect.getsourcefile(function)}:{first + next(i for i, l in enumerate(lines) if text in l)}"


def test_a_group_collective_against_a_sync_is_a_mismatch_naming_both_call_sites():
    def program(world):
        group = world.split(world.pid % 2)
        if world.pid == 1:
            world.sync()                                    # the sync
        else:
            group.allreduce(1)                              # the group allreduce

    sites = mismatch_sites(program, 3)
    assert sites[1].startswith("sync at ") and line_of(program, "# the sync") in sites[1]
    for pid in (0, 2):
        assert sites[pid].startswith("group allreduce of a split at ")
        assert line_of(program, "# the group allreduce") in sites[pid]


def test_a_group_collective_against_the_same_world_collective_is_a_mismatch():
    def program(world):
        group = world.split(0)              # the whole world, as a group
        (world if world.pid == 0 else group).allgather(world.pid)

    sites = mismatch_sites(program, 2)
    assert sites[0].startswith("allgather at ") and sites[1].startswith("group allgather of a split at ")


def test_collectives_of_two_splits_are_a_mismatch_even_when_the_groups_are_the_same():
    def program(world):
        first, second = world.split(world.pid % 2), world.split(world.pid % 2)
        (first if world.pid < 2 else second).allreduce(1)

    sites = mismatch_sites(program, 4)
    assert all(site.startswith("group allreduce of a split at ") for site in sites)


def test_row_and_column_collectives_of_one_grid_are_a_mismatch():
    def program(world):
        grid = world.grid((2, 2))
        (grid.row if world.pid == 3 else grid.column).broadcast(world.pid)

    sites = mismatch_sites(program, 4)
    assert sites[3].startswith("group broadcast(root=0) of grid (2, 2) along axis 1 at ")
    assert sites[0].startswith("group broadcast(root=0) of grid (2, 2) along axis 0 at ")


def test_different_group_collectives_on_one_split_are_a_mismatch():
    def program(world):
        group = world.split(world.pid % 2)
        group.gather(world.pid) if world.pid == 2 else group.allgather(world.pid)

    sites = mismatch_sites(program, 3)
    assert sites[2].startswith("group gather(root=0)") and sites[0].startswith("group allgather")


def test_ranks_of_one_group_naming_different_roots_are_a_mismatch():
    def program(world):
        group = world.split(world.pid // 2)            # {0, 1}, {2, 3}: the second disagrees
        group.reduce(world.pid, root=world.pid % 2 if world.pid >= 2 else 0)

    sites = mismatch_sites(program, 4)
    assert [site.split(" at ")[0] for site in sites] == [
        "group reduce(root=0) of a split", "group reduce(root=0) of a split",
        "group reduce(root=0) of a split", "group reduce(root=1) of a split"]


def test_a_split_against_a_sync_is_a_mismatch():
    def program(world):
        world.sync() if world.pid == 0 else world.split(1)

    sites = mismatch_sites(program, 2)
    assert sites[0].startswith("sync at ") and sites[1].startswith("split at ")


# -- traffic stays in the group ---------------------------------------------

def one_alone(world, payload):
    """Rank 0 forms a group of its own; the others a group of the rest.
    Returns the sum, and the bytes of one contribution as this run's
    engine serializes it (where an array's data goes is the transport's choice)."""
    group = world.split(world.pid == 0)
    pickled, buffers = wire.dumps(payload(0), world.engine.array_bulk_from)
    return group.allreduce(payload(world.pid), op=np.add).tolist(), len(pickled) + sum(b.nbytes for b in buffers)


def payload(pid):
    return np.full(1000, pid, dtype=np.int64)


@pytest.mark.parametrize("nprocs", [2, 3, 4])
def test_a_group_collective_exchanges_nothing_with_ranks_outside_the_group(nprocs):
    require_nprocs(nprocs)
    profiles = []
    results, sizes = zip(*bsp.run(one_alone, payload, nprocs=nprocs, profile=profiles.append))
    [profile] = profiles
    rest = list(range(1, nprocs))
    assert results[0] == payload(0).tolist()
    assert all(result == sum(payload(pid) for pid in rest).tolist() for result in results[1:])
    size = sizes[0]         # one contribution's bytes
    assert profile.kinds.tolist() == [Kind.SPLIT, Kind.GROUP_ALLREDUCE, Kind.EXIT]
    group_step = 1
    # rank 0 sends its contribution to itself only and receives only its own;
    # each other rank sends to, and receives from, exactly the len(rest) ranks of its group
    assert profile.bytes_sent[0][group_step] == profile.bytes_received[0][group_step] == size
    assert profile.messages_sent[0][group_step] == profile.messages_received[0][group_step] == 1
    for rank in rest:
        assert profile.bytes_sent[rank][group_step] == profile.bytes_received[rank][group_step] == len(rest) * size
        assert profile.messages_received[rank][group_step] == len(rest)
