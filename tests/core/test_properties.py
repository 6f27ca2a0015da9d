"""Random BSP programs of sends, queue messages, puts, gets, local writes and
collectives, over several supersteps and a random number of ranks, checked
against a sequential model of BSP semantics: every message exactly once,
ordered by source then send order; gets see the images as they were at the
end of the superstep, before its puts; puts apply in source order, then put
order; a collective ends its superstep like a sync and combines in pid order.

The messages, puts and local writes carry payloads drawn from payloads.py
(object graphs with shared references and cycles, repeated keys, numpy
arrays, dill-only objects, ...): each program draws a pool of them, and
each arrival is compared with the round trip of the payload sent
(structure.py; sharing is the wire fuzz's part, test_wire_fuzz.py).

BSP_PROPERTY_EXAMPLES sets how many programs to try (scripts/random_programs
runs ten thousand)."""

import functools
import operator
import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsp
from bsp.testing import require_nprocs
from payloads import payloads
from structure import assert_same, round_trip

LENGTH = 6      # of the coarray
POOL = 4        # payloads drawn per program


class Sent:
    """In the model: payload number `number` of the program's pool, which
    arrives as a round trip of it."""

    def __init__(self, number):
        self.number = number


def operations(nprocs):
    rank = st.integers(0, nprocs - 1)
    value = st.integers(-99, 99)
    payload = st.integers(0, POOL - 1)
    window = st.tuples(st.integers(0, LENGTH), st.integers(0, LENGTH)).map(sorted)
    return st.one_of(
        st.tuples(st.just("send"), rank, payload),
        st.tuples(st.just("qsend"), st.integers(0, 1), rank, payload),
        st.tuples(st.just("put"), rank, payload),
        st.tuples(st.just("get"), rank),
        st.tuples(st.just("local"), payload),
        st.tuples(st.just("cput"), rank, window, value),
        st.tuples(st.just("cget"), rank, window),
    )


COLLECTIVES = ("sync", "broadcast", "reduce", "allreduce", "gather", "allgather", "scatter", "alltoall", "scan")


def ender(nprocs):
    """How a superstep ends: a sync or a collective, with its root and each
    rank's contribution (a short string, so that the pid order of folds
    shows)."""
    contributions = st.lists(st.text("abc", max_size=2), min_size=nprocs, max_size=nprocs)
    return st.tuples(st.sampled_from(COLLECTIVES), st.integers(0, nprocs - 1), contributions)


def programs(max_nprocs=4, max_supersteps=4):
    """(nprocs, pool of payloads, supersteps)."""
    def for_nprocs(nprocs):
        operations_of_ranks = st.lists(st.lists(operations(nprocs), max_size=6), min_size=nprocs, max_size=nprocs)
        superstep = st.tuples(operations_of_ranks, ender(nprocs))
        return st.tuples(st.just(nprocs), st.lists(payloads(), min_size=POOL, max_size=POOL),
                         st.lists(superstep, min_size=1, max_size=max_supersteps))
    return st.integers(1, max_nprocs).flatmap(for_nprocs)


def end_superstep(world, how):
    """Call the superstep's ender on this rank; what it returned."""
    kind, root, values = how
    mine = values[world.pid]
    calls = {
        "sync": lambda: world.sync(),
        "broadcast": lambda: world.broadcast(mine, root=root),
        "reduce": lambda: world.reduce(mine, root=root),
        "allreduce": lambda: world.allreduce(mine),
        "gather": lambda: world.gather(mine, root=root),
        "allgather": lambda: world.allgather(mine),
        "scatter": lambda: world.scatter([mine + str(dest) for dest in range(world.nprocs)], root=root),
        "alltoall": lambda: world.alltoall([mine + str(dest) for dest in range(world.nprocs)]),
        "scan": lambda: world.scan(mine),
    }
    return calls[kind]()


def collective_result(how, pid, nprocs):
    """What the ender returns on rank `pid`, computed sequentially."""
    kind, root, values = how
    results = {
        "sync": None,
        "broadcast": values[root],
        "reduce": functools.reduce(operator.add, values) if pid == root else None,
        "allreduce": functools.reduce(operator.add, values),
        "gather": list(values) if pid == root else None,
        "allgather": list(values),
        "scatter": values[root] + str(pid),
        "alltoall": [values[source] + str(pid) for source in range(nprocs)],
        "scan": functools.reduce(operator.add, values[:pid + 1]),
    }
    return results[kind]


def execute(world, pool, plan):
    """Carry out this rank's operations; record what each sync delivered."""
    queues = [world.queue(), world.queue()]
    var = world.var(world.pid * 1000)
    xs = world.coarray(LENGTH, dtype=np.int64)
    log = []
    for operations_of_ranks, how in plan:
        futures = []
        for op in operations_of_ranks[world.pid]:
            if op[0] == "send":
                world.send((world.pid, pool[op[2]]), op[1])
            elif op[0] == "qsend":
                queues[op[1]].send((world.pid, pool[op[3]]), op[2])
            elif op[0] == "put":
                var.put((world.pid, pool[op[2]]), op[1])
            elif op[0] == "get":
                futures.append(var.get(op[1]))
            elif op[0] == "local":
                var.value = ("local", world.pid, pool[op[1]])
            elif op[0] == "cput":
                (start, stop), value = op[2], op[3]
                xs[op[1], start:stop] = value
            elif op[0] == "cget":
                start, stop = op[2]
                futures.append(xs[op[1], start:stop])
        ended = end_superstep(world, how)
        log.append((world.messages(), [q.messages() for q in queues], var.value, xs.local.tolist(),
                    [f.value.tolist() if isinstance(f.value, np.ndarray) else f.value for f in futures], ended))
    return log


def model(nprocs, plan):
    """The same program, sequentially."""
    var = [pid * 1000 for pid in range(nprocs)]
    xs = [[0] * LENGTH for _ in range(nprocs)]
    logs = [[] for _ in range(nprocs)]
    for superstep, how in plan:
        # the compute phase: local writes take effect at once
        for pid in range(nprocs):
            for op in superstep[pid]:
                if op[0] == "local":
                    var[pid] = ("local", pid, Sent(op[1]))
        # the sync: gets read the images first ...
        got = [[] for _ in range(nprocs)]
        for pid in range(nprocs):
            for op in superstep[pid]:
                if op[0] == "get":
                    got[pid].append(var[op[1]])
                elif op[0] == "cget":
                    start, stop = op[2]
                    got[pid].append(xs[op[1]][start:stop])
        # ... then puts apply, by source, then put order
        for source in range(nprocs):
            for op in superstep[source]:
                if op[0] == "put":
                    var[op[1]] = (source, Sent(op[2]))
                elif op[0] == "cput":
                    start, stop = op[2]
                    xs[op[1]][start:stop] = [op[3]] * (stop - start)
        for pid in range(nprocs):
            def delivered(kind, queue=None):
                return [(source, (source, Sent(op[-1]))) for source in range(nprocs) for op in superstep[source]
                        if op[0] == kind and op[-2] == pid and (queue is None or op[1] == queue)]
            logs[pid].append((delivered("send"), [delivered("qsend", 0), delivered("qsend", 1)],
                              var[pid], list(xs[pid]), got[pid], collective_result(how, pid, nprocs)))
    return logs


def arriving(expected, pool):
    """The model's logs with each Sent as a round trip of its payload."""
    if isinstance(expected, Sent):
        return round_trip(pool[expected.number])
    if isinstance(expected, (list, tuple)):
        return type(expected)(arriving(item, pool) for item in expected)
    return expected


@settings(max_examples=int(os.environ.get("BSP_PROPERTY_EXAMPLES", 60)), deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(programs())
def test_random_programs_match_the_sequential_model(program):
    nprocs, pool, plan = program
    require_nprocs(nprocs)
    logs = bsp.run(execute, pool, plan, nprocs=nprocs)
    assert_same(logs, arriving(model(nprocs, plan), pool), identity=False)
