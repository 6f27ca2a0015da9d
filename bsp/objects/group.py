"""`Group`: some of the world's ranks, with collectives of their own, and
`split`, which makes them.

A split partitions the world: the ranks that give the same color form a
group, ordered by (key, world pid).  Every rank learns every rank's color
and key in the split's superstep, so every rank knows the whole partition
and the groups need no further agreement.  A group collective is one
superstep of the whole world in which every rank calls the same collective
on its own group of the same split (see bsp.objects.collectives); its sync record
carries the split's identity, so that a rank calling anything else is a
SyncMismatchError, not a hang.
"""

from __future__ import annotations

from typing import Any, NoReturn, Sequence

from bsp.objects.collectives import Collectives, Team, group_team, superstep
from bsp.base.argument_checks import check_integer
from bsp.core.engine import Engine
from bsp.core.sync_record import Kind


class Group(Collectives):
    """This rank's group of a split (`World.split`) or of a grid axis
    (`Grid.along`): `pid` within the group, `nprocs`, `ranks` (the world
    pids of the group, in group-pid order), and the eight collectives of
    World, with pids and roots within the group.

    A group collective is one superstep of the whole world: every rank calls
    the same collective on its own group of the same split (groups may name
    different roots); a rank that calls a sync, a world collective or a
    collective of another split instead is a SyncMismatchError on every
    rank.  Its traffic stays in the group; its cost is that of the largest
    group: h = (p-1)*size for p its ranks."""

    def __init__(self, engine: Engine, ranks: Sequence[int], split: int):
        self._engine = engine
        self._team: Team = group_team(engine, ranks, split)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Group cannot be sent or pickled: it is one rank's handle on its group")

    def __repr__(self) -> str:
        return f"<bsp.Group pid={self.pid} nprocs={self.nprocs} ranks={self.ranks}>"

    @property
    def pid(self) -> int:
        """This rank within the group, 0..nprocs-1."""
        return self._team.pid

    @property
    def nprocs(self) -> int:
        """The number of ranks in the group."""
        return self._team.nprocs

    @property
    def ranks(self) -> tuple[int, ...]:
        """The world pids of the group's ranks, in group-pid order."""
        return tuple(self._team.ranks)


def split(engine: Engine, color: Any, key: Any) -> Group:
    """This rank's group of the split by `color` and `key` (see
    World.split).  One superstep."""
    color, key = _check_color(color), _check_key(key)
    identity = engine.create_split("split")
    arrived = superstep(engine, Kind.SPLIT, [(range(engine.nprocs), (color, key))])
    choices = [choice for _, choice in arrived]
    return Group(engine, members(choices, color), identity)


def members(choices: list[tuple[Any, int | None]], color: Any) -> list[int]:
    """The world pids of the group of `color`, ordered by (key, world pid),
    from every rank's (color, key); a key of None is the world pid."""
    ordered = sorted((pid if key is None else key, pid) for pid, (their_color, key) in enumerate(choices)
                     if their_color == color)
    return [pid for _, pid in ordered]


def _check_color(color: Any) -> Any:
    try:
        hash(color)
        equal = color == color
    except TypeError:
        raise TypeError(f"split's color must be hashable (an int or a str, say), "
                        f"not {type(color).__name__!r}") from None
    if equal is not True:
        raise ValueError(f"split's color must equal itself, and {color!r} does not")
    return color


def _check_key(key: Any) -> int | None:
    if key is None:
        return None
    return check_integer(key, "split's key must be an integer or None")
