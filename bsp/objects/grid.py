"""`Grid`: the ranks as a processor grid, row-major in pid, with a Group
along each axis; and `dims_create`, a near-square grid shape for a number
of ranks.

A grid is made without a superstep: every rank computes the same
coordinates and groups from the shape alone.  It counts as a data object
(like a queue or a coarray), so every rank must make the same grids in the
same order; a rank that makes another grid, or none, is a SyncMismatchError
at the next sync.  Each axis of a grid is a split of its own: the groups
along axis 0 and those along axis 1 are different splits, whose collectives
cannot share a superstep.
"""

from __future__ import annotations

import math
import operator
from typing import Any, NoReturn, Sequence

import numpy as np

from bsp.base.argument_checks import check_nprocs
from bsp.core.engine import MAX_AXES, Engine
from bsp.objects.group import Group


class Grid:
    """The ranks as a processor grid of `shape` (`World.grid`): `coords` of
    this rank, row-major in world pid (the last coordinate varies fastest);
    `rank_of` and `coords_of` between the two; `along(axis)`, the Group of
    the ranks that differ from this one only in coordinate `axis`, ordered
    by it (so its pid is `coords[axis]`); for a 2-D grid (M, N), `row` =
    along(1), the N ranks of this rank's row s, and `column` = along(0),
    the M ranks of its column t."""

    def __init__(self, engine: Engine, shape: Any):
        self.shape: tuple[int, ...] = check_grid_shape(shape, engine.nprocs)
        self._engine = engine
        self._split = engine.create_split(f"grid {self.shape}")
        self.coords: tuple[int, ...] = self.coords_of(engine.pid)
        self._along: dict[int, Group] = {}

    def __reduce__(self) -> NoReturn:
        raise TypeError("a Grid cannot be sent or pickled: it is one rank's handle on the grid")

    def __repr__(self) -> str:
        return f"<bsp.Grid shape={self.shape} coords={self.coords}>"

    @property
    def ndim(self) -> int:
        """The number of axes."""
        return len(self.shape)

    def rank_of(self, coords: Sequence[int]) -> int:
        """The world pid at `coords` (one integer per axis, each in
        0..shape[axis]-1).  Raises TypeError or ValueError naming the
        coordinates and the shape."""
        coords = self._check_coords(coords)
        pid = 0
        for coordinate, extent in zip(coords, self.shape):
            pid = pid * extent + coordinate
        return pid

    def coords_of(self, pid: int) -> tuple[int, ...]:
        """The coordinates of world pid `pid`.  Raises ValueError for a pid
        outside the grid."""
        nprocs = math.prod(self.shape)
        pid = operator.index(pid)
        if not 0 <= pid < nprocs:
            raise ValueError(f"pid {pid} is outside the grid {self.shape}: pids run from 0 to {nprocs - 1}")
        coords = []
        for extent in reversed(self.shape):
            pid, coordinate = divmod(pid, extent)
            coords.append(coordinate)
        return tuple(reversed(coords))

    def along(self, axis: int) -> Group:
        """The Group of the ranks whose coordinates differ from this rank's
        only in `axis` (negative counts from the end), in the order of that
        coordinate.  No superstep; the same Group object on every call.
        Raises ValueError for an axis the grid does not have."""
        axis = self._check_axis(axis)
        group = self._along.get(axis)
        if group is None:
            ranks = [self.rank_of(self.coords[:axis] + (c,) + self.coords[axis + 1:])
                     for c in range(self.shape[axis])]
            group = self._along[axis] = Group(self._engine, ranks, self._split + axis)
        return group

    @property
    def row(self) -> Group:
        """For a 2-D grid: along(1), the ranks of this rank's row (same s),
        ordered by t."""
        return self._along_2d(1, "row")

    @property
    def column(self) -> Group:
        """For a 2-D grid: along(0), the ranks of this rank's column (same
        t), ordered by s."""
        return self._along_2d(0, "column")

    def _along_2d(self, axis: int, name: str) -> Group:
        if self.ndim != 2:
            raise ValueError(f"grid.{name} is defined for 2-D grids; this grid {self.shape} has "
                             f"{self.ndim} axes: use grid.along(axis)")
        return self.along(axis)

    def _check_axis(self, axis: Any) -> int:
        if isinstance(axis, bool):
            raise TypeError("axis must be an integer, not a bool")
        try:
            index = operator.index(axis)
        except TypeError:
            raise TypeError(f"axis must be an integer, not {type(axis).__name__!r}") from None
        if not -self.ndim <= index < self.ndim:
            raise ValueError(f"axis {index} is out of range for the {self.ndim}-D grid {self.shape}")
        return index % self.ndim

    def _check_coords(self, coords: Any) -> tuple[int, ...]:
        try:
            values = tuple(operator.index(c) for c in coords)
        except TypeError:
            raise TypeError(f"coords must be a sequence of {self.ndim} integers, not {coords!r}") from None
        if len(values) != self.ndim or not all(0 <= c < n for c, n in zip(values, self.shape)):
            raise ValueError(f"coords {values} are not in the grid {self.shape}: "
                             f"{self.ndim} integers, each in 0..shape[axis]-1")
        return values


def check_grid_shape(shape: Any, nprocs: int) -> tuple[int, ...]:
    """`shape` as a tuple of positive ints that multiply to `nprocs`, or
    TypeError/ValueError naming the shape and nprocs."""
    if isinstance(shape, (str, bytes)):         # a str iterates as characters, bytes as their codes
        raise TypeError(f"a grid shape must be a tuple of positive integers, not {shape!r}")
    if isinstance(shape, (int, np.integer)) and not isinstance(shape, bool):
        shape = (shape,)
    try:
        values = tuple(operator.index(n) for n in shape)
        if any(isinstance(n, bool) for n in shape):
            raise TypeError
    except TypeError:
        raise TypeError(f"a grid shape must be a tuple of positive integers, not {shape!r}") from None
    if not values or any(n < 1 for n in values):
        raise ValueError(f"a grid shape must be one or more positive integers, not {values}")
    if len(values) > MAX_AXES:
        raise ValueError(f"a grid has at most {MAX_AXES} axes, not {len(values)}")
    if math.prod(values) != nprocs:
        raise ValueError(f"grid shape {values} has {math.prod(values)} places for {nprocs} ranks: "
                         f"its extents must multiply to nprocs = {nprocs}")
    return values


def dims_create(nprocs: int, ndim: int) -> tuple[int, ...]:
    """A near-square grid shape of `ndim` axes for `nprocs` ranks, like
    MPI_Dims_create: extents that multiply to nprocs, non-increasing, the
    largest as small as it can be (then the next, and so on).
    dims_create(6, 2) == (3, 2), dims_create(8, 3) == (2, 2, 2),
    dims_create(72, 2) == (9, 8), dims_create(7, 2) == (7, 1).
    Raises TypeError/ValueError for nprocs or ndim not a positive integer."""
    nprocs = check_nprocs(nprocs, "dims_create's nprocs")
    ndim = check_nprocs(ndim, "dims_create's ndim")
    shape = _factor(nprocs, ndim, nprocs)
    assert shape is not None        # (nprocs, 1, ..., 1) always fits
    return shape


def _factor(n: int, k: int, most: int) -> tuple[int, ...] | None:
    """The lexicographically smallest non-increasing k extents, each at most
    `most`, that multiply to n; None if there are none."""
    if k == 1:
        return (n,) if n <= most else None
    for d in _divisors(n):
        if d ** k >= n and d <= most:
            rest = _factor(n // d, k - 1, d)
            if rest is not None:
                return (d, *rest)
    return None


def _divisors(n: int) -> list[int]:
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return sorted(set(small + [n // d for d in small]))
