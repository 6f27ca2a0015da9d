"""Collective operations, each one superstep.

Every collective queues its contributions on the system channel and ends the
superstep with an exchange whose sync record names the collective (and its
root), so that ranks calling different collectives, or one calling `sync`,
get SyncMismatchError rather than a hang.  Traffic queued with `send`, puts
and gets before the collective is delivered at its barrier, as at any sync.

Results are copies, as messages are, including a rank's own contribution.
Combining operations fold the contributions in pid order,
`op(op(v0, v1), v2)...`, so any associative `op` gives the same, bitwise
identical result on every rank and on both backends, commutative or not.

Costs are given for a contribution of s bytes: h is the most bytes a rank
sends or receives in the collective's superstep.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, Iterable, Sequence

from .checks import check_callable, check_pid
from .engine import SYSTEM_CHANNEL, Engine
from .record import Kind


def superstep(engine: Engine, kind: int, posts: Iterable[tuple[Sequence[int], Any]],
              root: int = 0) -> list[tuple[int, Any]]:
    """Queue each (dests, obj) of `posts`, end the superstep as `kind` (with
    `root`), and return the (source, obj) pairs that arrived, in source
    order: the primitive of every collective operation."""
    for dests, obj in posts:
        engine.post_object(SYSTEM_CHANNEL, dests, obj)
    engine.exchange(kind, root)
    return engine.objects_on(SYSTEM_CHANNEL)


def _superstep(engine: Engine, kind: int, posts: Iterable[tuple[Sequence[int], Any]], root: int = 0) -> list[Any]:
    """`superstep`, returning only the objects."""
    return [obj for _, obj in superstep(engine, kind, posts, root)]


def _fold(op: Callable[[Any, Any], Any], values: list[Any]) -> Any:
    return functools.reduce(op, values)


def _per_rank(engine: Engine, objs: Any, role: str) -> list[tuple[tuple[int], Any]]:
    """(dest, obj) posts for a sequence holding one object per rank."""
    if not (hasattr(objs, "__len__") and hasattr(objs, "__getitem__")):
        raise TypeError(f"{role} must be a sequence of {engine.nprocs} objects, one per rank, "
                        f"not {type(objs).__name__!r}")
    if len(objs) != engine.nprocs:
        raise ValueError(f"{role} must hold one object per rank: expected {engine.nprocs}, got {len(objs)}")
    return [((dest,), objs[dest]) for dest in range(engine.nprocs)]


def broadcast(engine: Engine, obj: Any, root: int) -> Any:
    """Root's `obj` on every rank.  1 superstep, h = (p-1)s at the root."""
    root = check_pid(root, engine.nprocs, "root")
    posts = [(range(engine.nprocs), obj)] if engine.pid == root else []
    return _superstep(engine, Kind.BROADCAST, posts, root)[0]


def reduce(engine: Engine, value: Any, op: Callable[[Any, Any], Any], root: int) -> Any:
    """The pid-order fold of every rank's `value` on the root; None elsewhere.
    1 superstep, h = (p-1)s at the root."""
    check_callable(op, "op")
    root = check_pid(root, engine.nprocs, "root")
    values = _superstep(engine, Kind.REDUCE, [((root,), value)], root)
    return _fold(op, values) if engine.pid == root else None


def allreduce(engine: Engine, value: Any, op: Callable[[Any, Any], Any]) -> Any:
    """The pid-order fold of every rank's `value`, on every rank.
    1 superstep, h = (p-1)s."""
    check_callable(op, "op")
    return _fold(op, _superstep(engine, Kind.ALLREDUCE, [(range(engine.nprocs), value)]))


def gather(engine: Engine, obj: Any, root: int) -> list[Any] | None:
    """Every rank's `obj`, in pid order, on the root; None elsewhere.
    1 superstep, h = (p-1)s at the root."""
    root = check_pid(root, engine.nprocs, "root")
    objs = _superstep(engine, Kind.GATHER, [((root,), obj)], root)
    return objs if engine.pid == root else None


def allgather(engine: Engine, obj: Any) -> list[Any]:
    """Every rank's `obj`, in pid order, on every rank.  1 superstep, h = (p-1)s."""
    return _superstep(engine, Kind.ALLGATHER, [(range(engine.nprocs), obj)])


def scatter(engine: Engine, objs: Sequence[Any] | None, root: int) -> Any:
    """Rank i gets `objs[i]` of the root (`objs` is ignored elsewhere).
    1 superstep, h = (p-1)s at the root."""
    root = check_pid(root, engine.nprocs, "root")
    posts = _per_rank(engine, objs, "scatter's objs") if engine.pid == root else []
    return _superstep(engine, Kind.SCATTER, posts, root)[0]


def alltoall(engine: Engine, objs: Sequence[Any]) -> list[Any]:
    """Rank i sends `objs[j]` to rank j and gets, in pid order, what each
    rank had for it.  1 superstep, h = (p-1)s."""
    return _superstep(engine, Kind.ALLTOALL, _per_rank(engine, objs, "alltoall's objs"))


def scan(engine: Engine, value: Any, op: Callable[[Any, Any], Any]) -> Any:
    """Inclusive prefix: rank i gets the fold of the values of ranks 0..i.
    1 superstep, h = (p-1)s on rank 0."""
    check_callable(op, "op")
    return _fold(op, _superstep(engine, Kind.SCAN, [(range(engine.pid, engine.nprocs), value)]))

