"""Payloads over every channel of a run, checked where they arrive.

A `Plan` is a run: its supersteps send payloads (see payloads.py) to the
same and to different ranks, on `world.send`, two queues and Var puts, with
Var gets (whose replies travel back) and Coarray puts and gets (whose
headers carry indices of every form), or it is one collective with payloads
as contributions.  The plan itself is the run's argument, and each rank
returns payloads of it as its result.  `plans()` draws plans with hypothesis;
`run_plan` runs one with `bsp.run` and checks it.

Every rank holds the whole plan, so it knows what each rank sent it: after
each superstep it compares everything that arrived with the independent
round trips of what was sent, in one `assert_same` (equal, identity kept
within each payload, nothing shared between payloads), and checks that
nothing arrived holding the plan's own objects.  A failure raises on the
rank that saw it, so `bsp.run` raises RemoteError with its traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from hypothesis import strategies as st

import bsp
from bsp.launch.bsp_run import max_nprocs as most_nprocs
from payloads import STRUCTURED, make_array, pair, payload_sequences, payloads
from structure import assert_private, assert_same, mutable_objects, round_trip

POINT_TO_POINT = ("send", "queue0", "queue1", "put")
COLLECTIVES = ("broadcast", "reduce", "allreduce", "gather", "allgather", "scatter", "alltoall", "scan")
COARRAY_SHAPE = (3, 4)
COARRAY_DTYPES = ("?", "i1", ">i4", "<u8", "<f2", "<f8", ">c16", "M8[s]", STRUCTURED)


@dataclass
class PointToPoint:
    """One superstep: `sends[r]` are rank r's (channel, dest, payload) in
    send order; `held[r]` is rank r's Var value during the superstep;
    `gets[r]` the ranks whose Var rank r gets.  Payloads are numbers in
    the plan's pool."""
    sends: list
    held: list
    gets: list


@dataclass
class Collective:
    """One collective: `values[r]` is rank r's contribution (a list of one
    payload per rank for scatter, at the root, and alltoall)."""
    kind: str
    root: int
    values: list


@dataclass
class CoarrayStep:
    """One superstep on a new coarray of `dtype` and COARRAY_SHAPE, whose
    image on rank r is filled from `seeds[r]`: `puts[r]` are rank r's
    (dest, index, seed of the values), `gets[r]` its (source, index)."""
    dtype: Any
    seeds: list
    puts: list
    gets: list


@dataclass
class Plan:
    """A run.  Its steps name payloads by number in `pool`, so that one
    drawn payload can travel many times (and twice in one superstep, to the
    same rank: two messages, two copies)."""
    nprocs: int
    pool: list
    steps: list
    results: list                   # results[r]: the payloads rank r returns
    scribble: list = field(default_factory=list)    # each rank appends to its copy

    def payload(self, number: int) -> Any:
        return self.pool[number % len(self.pool)]


# -- drawing plans -------------------------------------------------------------

def _per_rank(nprocs, strategy):
    return st.lists(strategy, min_size=nprocs, max_size=nprocs)


def point_to_point(nprocs, payload, max_sends):
    rank = st.integers(0, nprocs - 1)
    send = st.tuples(st.sampled_from(POINT_TO_POINT), rank, payload)
    return st.builds(PointToPoint, _per_rank(nprocs, st.lists(send, max_size=max_sends)),
                     _per_rank(nprocs, payload), _per_rank(nprocs, st.lists(rank, max_size=3)))


def collective(nprocs, payload):
    one_each = _per_rank(nprocs, payload)
    return st.one_of(
        st.builds(Collective, st.sampled_from([k for k in COLLECTIVES if k not in ("scatter", "alltoall")]),
                  st.integers(0, nprocs - 1), one_each),
        st.builds(Collective, st.sampled_from(["scatter", "alltoall"]), st.integers(0, nprocs - 1),
                  _per_rank(nprocs, one_each)),
    )


def _axis_index(size):
    bound = st.one_of(st.none(), st.integers(-size, size))
    return st.one_of(st.integers(-size, size - 1), st.integers(0, size - 1).map(np.int64),
                     st.builds(slice, bound, bound, st.one_of(st.none(), st.sampled_from([-2, -1, 1, 2, 3]))))


def indices():
    """Coarray indices of every basic form, over COARRAY_SHAPE."""
    rows, columns = (_axis_index(size) for size in COARRAY_SHAPE)
    same_slice = st.builds(slice, st.integers(-3, 3), st.integers(-3, 3)).map(lambda s: (s, s))
    return st.one_of(st.just(Ellipsis), rows, st.tuples(rows, columns), st.tuples(st.just(Ellipsis), columns),
                     st.tuples(rows, st.just(Ellipsis)), same_slice)


def coarray_step(nprocs):
    rank = st.integers(0, nprocs - 1)
    seed = st.integers(0, 2**32 - 1)
    return st.builds(CoarrayStep, st.sampled_from(COARRAY_DTYPES), _per_rank(nprocs, seed),
                     _per_rank(nprocs, st.lists(st.tuples(rank, indices(), seed), max_size=4)),
                     _per_rank(nprocs, st.lists(st.tuples(rank, indices()), max_size=3)))


def plans(max_nprocs: int = 4, max_steps: int = 4, pool: int = 6, max_sends: int = 6, **payload_options):
    """Runs of 1 to `max_nprocs` ranks (fewer if the backend has fewer: the
    MPI job's size) and 1 to `max_steps` supersteps, over a pool of 1 to
    `pool` drawn payloads; each rank sends up to `max_sends` messages per
    superstep."""
    max_nprocs = min(max_nprocs, most_nprocs() or max_nprocs)
    @functools.lru_cache(maxsize=None)      # a new strategy object per draw would be validated anew
    def of(nprocs):
        number = st.integers(0, pool - 1)
        step = st.one_of(point_to_point(nprocs, number, max_sends), point_to_point(nprocs, number, max_sends),
                         collective(nprocs, number), coarray_step(nprocs))
        return st.builds(Plan, st.just(nprocs), st.lists(payloads(**payload_options), min_size=1, max_size=pool),
                         st.lists(step, min_size=1, max_size=max_steps),
                         _per_rank(nprocs, st.lists(number, min_size=1, max_size=4)))
    return st.integers(1, max_nprocs).flatmap(of)


def count_sequences(plan: Plan) -> tuple[int, int]:
    """(payload sequences, payloads) that `plan` sends: a sequence is what
    one rank sends on one channel in one superstep (its Var get replies
    count as one; Coarray data is not counted), one rank's contribution to a
    collective, or one rank's result."""
    sequences, count = plan.nprocs, sum(map(len, plan.results))
    for step in plan.steps:
        if isinstance(step, PointToPoint):
            for r in range(plan.nprocs):
                sequences += len({channel for channel, _, _ in step.sends[r]}) + bool(step.gets[r])
                count += len(step.sends[r]) + len(step.gets[r])
        elif isinstance(step, Collective):
            sequences += plan.nprocs
            count += sum(len(v) if step.kind in ("scatter", "alltoall") else 1 for v in step.values)
    return sequences, count


# -- running them -------------------------------------------------------------

def run_plan(plan: Plan) -> None:
    """Run `plan` (checks on every rank), then check the results and that
    the caller's plan is unchanged (arguments travel as copies)."""
    results = bsp.run(exercise, plan, nprocs=plan.nprocs)
    assert_same(results, [round_trip(_result(plan, pid)) for pid in range(plan.nprocs)])
    assert_private(results, mutable_objects(plan))
    assert plan.scribble == [], f"a rank's changes to its arguments reached the caller: {plan.scribble}"


def exercise(world, plan: Plan) -> list:
    """The program: every step of `plan`, checked as it arrives."""
    sent = mutable_objects(plan)
    queues = (world.queue(), world.queue())
    var = world.var(None)
    for step in plan.steps:
        if isinstance(step, PointToPoint):
            received, expected = _point_to_point(world, queues, var, plan, step)
        elif isinstance(step, Collective):
            received, expected = _collective(world, plan, step)
        else:
            received, expected = _coarray(world, step)
        assert_same(received, expected)
        assert_private(received, sent)
    plan.scribble.append(world.pid)
    return _result(plan, world.pid)


def _result(plan, pid):
    """What rank `pid` returns: payloads of its copy of the plan."""
    return [plan.payload(number) for number in plan.results[pid]]


def _point_to_point(world, queues, var, plan, step):
    me, nprocs, payload = world.pid, world.nprocs, plan.payload
    var.value = payload(step.held[me])
    futures = [var.get(source) for source in step.gets[me]]
    post = {"send": world.send, "queue0": queues[0].send, "queue1": queues[1].send, "put": var.put}
    for channel, dest, number in step.sends[me]:
        post[channel](payload(number), dest)
    world.sync()

    def sent_here(channel):
        return [(source, payload(number)) for source in range(nprocs) for kind, dest, number in step.sends[source]
                if kind == channel and dest == me]

    received = [world.messages(), queues[0].messages(), queues[1].messages(), [f.value for f in futures]]
    expected = [[(source, round_trip(payload)) for source, payload in sent_here(channel)]
                for channel in POINT_TO_POINT[:3]]
    expected.append([round_trip(payload(step.held[source])) for source in step.gets[me]])
    puts = sent_here("put")
    if puts:
        received.append(var.value)
        expected.append(round_trip(puts[-1][1]))
    return received, expected


def _fold(values):
    return functools.reduce(pair, values)


def _collective(world, plan, step):
    """The collective's result here, and what it must be."""
    me, root, kind = world.pid, step.root, step.kind
    if kind in ("scatter", "alltoall"):
        values = [[plan.payload(number) for number in numbers] for numbers in step.values]
        if kind == "scatter":
            return world.scatter(values[root] if me == root else None, root=root), round_trip(values[root][me])
        return world.alltoall(values[me]), [round_trip(value[me]) for value in values]
    values = [plan.payload(number) for number in step.values]
    copies = [round_trip(value) for value in values]
    mine, at_root = values[me], me == root
    if kind == "broadcast":
        return world.broadcast(mine if at_root else None, root=root), copies[root]
    if kind == "reduce":
        return world.reduce(mine, op=pair, root=root), _fold(copies) if at_root else None
    if kind == "gather":
        return world.gather(mine, root=root), copies if at_root else None
    if kind == "allreduce":
        return world.allreduce(mine, op=pair), _fold(copies)
    if kind == "allgather":
        return world.allgather(mine), copies
    return world.scan(mine, op=pair), _fold(copies[:me + 1])


def _coarray(world, step):
    """Puts and gets on a new coarray, against numpy on every image."""
    me = world.pid
    images = [make_array(step.dtype, COARRAY_SHAPE, seed, "whole") for seed in step.seeds]
    xs = world.coarray(images[me].copy())
    futures = [xs.get(source, index) for source, index in step.gets[me]]
    for dest, index, seed in step.puts[me]:
        xs.put(_values(step.dtype, images[dest][index], seed), dest, index)
    world.sync()
    expected = [_part(images[source], index).copy() for source, index in step.gets[me]]
    for source in range(world.nprocs):
        for dest, index, seed in step.puts[source]:
            images[dest][index] = _values(step.dtype, images[dest][index], seed)
    received = [xs.local, [np.asarray(future.value) for future in futures]]
    return received, [images[me], expected]


def _part(image, index):
    """image[index] as an array (of the image's dtype and byte order) even
    where numpy would make a scalar of it."""
    parts = index if isinstance(index, tuple) else (index,)
    return image[index] if any(part is Ellipsis for part in parts) else image[(*parts, Ellipsis)]


def _values(dtype, target, seed):
    return make_array(dtype, np.shape(target), seed, "whole")
