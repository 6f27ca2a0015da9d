"""Collective operations, each one superstep, over the whole world or over
the groups of a split (bsp.Group).

Every collective queues its contributions on the system channel and ends the
superstep with an exchange whose sync record names the collective (and its
root), so that ranks calling different collectives, or one calling `sync`,
get SyncMismatchError rather than a hang.  Traffic queued with `send`, puts
and gets before the collective is delivered at its barrier, as at any sync.

Results are copies, as messages are, including a rank's own contribution.
Combining operations fold the contributions in pid order,
`op(op(v0, v1), v2)...`, so any associative `op` gives the same, bitwise
identical result on every rank and on both backends, commutative or not.

A collective runs over a `Team`: the world, or this rank's group, whose
pids are places in the group's list of world pids.  In a group collective
every rank of the world calls the same collective, each on its own group of
the same split, in one superstep; each group folds in group-pid order, and
sends nothing outside the group.

Costs are given for a contribution of s bytes, p the ranks of the team: h is
the most bytes a rank sends or receives in the collective's superstep.
"""

from __future__ import annotations

import functools
import operator
from typing import Any, Callable, Iterable, NamedTuple, Sequence

from bsp.base.argument_checks import check_callable, check_pid
from bsp.core.engine import SYSTEM_CHANNEL, Engine
from bsp.core.sync_record import GROUP, Kind


class Team(NamedTuple):
    """The ranks a collective runs over: the world, or one group of a split."""

    ranks: Sequence[int]            # their world pids, in team order
    pid: int                        # this rank's place in `ranks`
    split: int = 0                  # the split's identity (Engine.create_split); 0: the world
    places: dict[int, int] = {}     # world pid -> place in `ranks`, for a group

    @property
    def nprocs(self) -> int:
        return len(self.ranks)

    def role(self, name: str) -> str:
        """How messages name an argument: 'root', or 'root (a pid within the group)'."""
        return f"{name} (a pid within the group)" if self.split else name


def world_team(engine: Engine) -> Team:
    return Team(range(engine.nprocs), engine.pid)


def group_team(engine: Engine, ranks: Sequence[int], split: int) -> Team:
    """This rank's team in a group of `ranks` (world pids, this rank's among them)."""
    places = {rank: place for place, rank in enumerate(ranks)}
    return Team(tuple(ranks), places[engine.pid], split, places)


def superstep(engine: Engine, kind: int, posts: Iterable[tuple[Sequence[int], Any]],
              root: int = 0, team: Team | None = None) -> list[tuple[int, Any]]:
    """Queue each (dests, obj) of `posts`, end the superstep as `kind` (with
    `root`), and return the (source, obj) pairs that arrived, in source
    order: the primitive of every collective operation.  With a group's
    `team`, dests and sources are pids within the group, and the superstep
    is `kind`'s group collective."""
    if team is None or not team.split:
        for dests, obj in posts:
            engine.post_object(SYSTEM_CHANNEL, dests, obj)
        engine.exchange(kind, root)
        return engine.objects_on(SYSTEM_CHANNEL)
    ranks = team.ranks
    for dests, obj in posts:
        engine.post_object(SYSTEM_CHANNEL, [ranks[dest] for dest in dests], obj)
    engine.exchange(kind + GROUP, root, group=(team.split, ranks[0]))
    places = team.places
    arrived = [(places[source], obj) for source, obj in engine.objects_on(SYSTEM_CHANNEL)]
    arrived.sort(key=operator.itemgetter(0))        # stable: send order within a source stays
    return arrived


def _superstep(engine: Engine, team: Team, kind: int, posts: Iterable[tuple[Sequence[int], Any]],
               root: int = 0) -> list[Any]:
    """`superstep`, returning only the objects."""
    return [obj for _, obj in superstep(engine, kind, posts, root, team)]


def _fold(op: Callable[[Any, Any], Any], values: list[Any]) -> Any:
    return functools.reduce(op, values)


def _per_rank(team: Team, objs: Any, role: str) -> list[tuple[tuple[int], Any]]:
    """(dest, obj) posts for a sequence holding one object per rank of the team."""
    ranks = "rank of the group" if team.split else "rank"
    if not (hasattr(objs, "__len__") and hasattr(objs, "__getitem__")):
        raise TypeError(f"{role} must be a sequence of {team.nprocs} objects, one per {ranks}, "
                        f"not {type(objs).__name__!r}")
    if len(objs) != team.nprocs:
        raise ValueError(f"{role} must hold one object per {ranks}: expected {team.nprocs}, got {len(objs)}")
    return [((dest,), objs[dest]) for dest in range(team.nprocs)]


def _root(team: Team, root: Any) -> int:
    return check_pid(root, team.nprocs, team.role("root"))


def broadcast(engine: Engine, team: Team, obj: Any, root: int) -> Any:
    """Root's `obj` on every rank.  1 superstep, h = (p-1)s at the root."""
    root = _root(team, root)
    posts = [(range(team.nprocs), obj)] if team.pid == root else []
    return _superstep(engine, team, Kind.BROADCAST, posts, root)[0]


def reduce(engine: Engine, team: Team, value: Any, op: Callable[[Any, Any], Any], root: int) -> Any:
    """The pid-order fold of every rank's `value` on the root; None elsewhere.
    1 superstep, h = (p-1)s at the root."""
    check_callable(op, "op")
    root = _root(team, root)
    values = _superstep(engine, team, Kind.REDUCE, [((root,), value)], root)
    return _fold(op, values) if team.pid == root else None


def allreduce(engine: Engine, team: Team, value: Any, op: Callable[[Any, Any], Any]) -> Any:
    """The pid-order fold of every rank's `value`, on every rank.
    1 superstep, h = (p-1)s."""
    check_callable(op, "op")
    return _fold(op, _superstep(engine, team, Kind.ALLREDUCE, [(range(team.nprocs), value)]))


def gather(engine: Engine, team: Team, obj: Any, root: int) -> list[Any] | None:
    """Every rank's `obj`, in pid order, on the root; None elsewhere.
    1 superstep, h = (p-1)s at the root."""
    root = _root(team, root)
    objs = _superstep(engine, team, Kind.GATHER, [((root,), obj)], root)
    return objs if team.pid == root else None


def allgather(engine: Engine, team: Team, obj: Any) -> list[Any]:
    """Every rank's `obj`, in pid order, on every rank.  1 superstep, h = (p-1)s."""
    return _superstep(engine, team, Kind.ALLGATHER, [(range(team.nprocs), obj)])


def scatter(engine: Engine, team: Team, objs: Sequence[Any] | None, root: int) -> Any:
    """Rank i gets `objs[i]` of the root (`objs` is ignored elsewhere).
    1 superstep, h = (p-1)s at the root."""
    root = _root(team, root)
    posts = _per_rank(team, objs, "scatter's objs") if team.pid == root else []
    return _superstep(engine, team, Kind.SCATTER, posts, root)[0]


def alltoall(engine: Engine, team: Team, objs: Sequence[Any]) -> list[Any]:
    """Rank i sends `objs[j]` to rank j and gets, in pid order, what each
    rank had for it.  1 superstep, h = (p-1)s."""
    return _superstep(engine, team, Kind.ALLTOALL, _per_rank(team, objs, "alltoall's objs"))


def scan(engine: Engine, team: Team, value: Any, op: Callable[[Any, Any], Any]) -> Any:
    """Inclusive prefix: rank i gets the fold of the values of ranks 0..i.
    1 superstep, h = (p-1)s on rank 0."""
    check_callable(op, "op")
    return _fold(op, _superstep(engine, team, Kind.SCAN, [(range(team.pid, team.nprocs), value)]))


class Collectives:
    """The eight collectives as methods, for World and Group (which set
    `_engine` and `_team`).  Each is one superstep of the whole world, which
    every rank must call: on a Group, every rank calls the same collective
    on its own group of the same split.  pids and roots are the team's
    (world pids, or pids within the group); p below is the team's size."""

    _engine: Engine
    _team: Team

    def broadcast(self, obj: Any = None, root: int = 0) -> Any:
        """The root's `obj` on every rank.  h = (p-1)*size at the root."""
        return broadcast(self._engine, self._team, obj, root)

    def reduce(self, value: Any, op: Callable[[Any, Any], Any] = operator.add, root: int = 0) -> Any:
        """Fold of every rank's value in pid order, on the root; None
        elsewhere.  `op` is any associative callable (numpy ufuncs work
        elementwise).  h = (p-1)*size at the root."""
        return reduce(self._engine, self._team, value, op, root)

    def allreduce(self, value: Any, op: Callable[[Any, Any], Any] = operator.add) -> Any:
        """Fold of every rank's value in pid order, on every rank.
        h = (p-1)*size."""
        return allreduce(self._engine, self._team, value, op)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        """List of every rank's obj, in pid order, on the root; None
        elsewhere.  h = (p-1)*size at the root."""
        return gather(self._engine, self._team, obj, root)

    def allgather(self, obj: Any) -> list[Any]:
        """List of every rank's obj, in pid order, on every rank.
        h = (p-1)*size."""
        return allgather(self._engine, self._team, obj)

    def scatter(self, objs: Sequence[Any] | None = None, root: int = 0) -> Any:
        """Rank i gets `objs[i]` of the root; `objs` is ignored elsewhere.
        h = (p-1)*size at the root."""
        return scatter(self._engine, self._team, objs, root)

    def alltoall(self, objs: Sequence[Any]) -> list[Any]:
        """Send `objs[j]` to rank j; get the list of what each rank sent
        here, in pid order.  h = (p-1)*size."""
        return alltoall(self._engine, self._team, objs)

    def scan(self, value: Any, op: Callable[[Any, Any], Any] = operator.add) -> Any:
        """Inclusive prefix fold: rank i gets op over the values of ranks
        0..i, in pid order.  h = (p-1)*size on rank 0."""
        return scan(self._engine, self._team, value, op)
