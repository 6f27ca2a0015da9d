"""`DistArray`: a global numpy array split over the ranks along axis 0."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from . import collectives
from .record import Kind
from .world import World

DISTRIBUTIONS = ("block", "cyclic")


class DistArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A global array of `shape`, whose rows (axis 0) are split over the
    ranks: in contiguous blocks (rank i holds rows lo..hi-1, the first n % p
    ranks one row more than the others), or cyclically (rank i holds rows i,
    i+p, i+2p, ...).  Each rank holds its rows as `local`, a numpy array;
    `rows` are their global indices.

    Create it on every rank: `DistArray.from_function` or `DistArray.zeros`
    (no communication), or `DistArray.from_root` (a scatter).
    numpy ufuncs and operators work elementwise on DistArrays of the same
    shape and distribution, and with scalars, locally and without
    communication.  `sum`, `min`, `max`, `mean` and `dot` return the global
    result on every rank; `gather`, `redistribute` and `halo` move rows.
    Each of those is one superstep; costs below are for n rows of s bytes.
    """

    def __init__(self, world: World, shape: tuple[int, ...], local: np.ndarray, distribution: str = "block"):
        """Wrap this rank's part (`local`) of a global array; prefer the
        constructors.  Raises ValueError if `local` does not have this rank's
        rows of `shape` under `distribution`."""
        shape = tuple(int(n) for n in shape)
        if distribution not in DISTRIBUTIONS:
            raise ValueError(f"distribution must be 'block' or 'cyclic', not {distribution!r}")
        if not shape:
            raise ValueError("a DistArray has at least one axis, along which it is split")
        self.world = world
        self.shape = shape
        self.distribution = distribution
        self.rows = rows_of(shape[0], world.pid, world.nprocs, distribution)
        expected = (len(self.rows), *shape[1:])
        if local.shape != expected:
            raise ValueError(f"rank {world.pid} holds rows {_describe(self.rows)} of a {shape} array "
                             f"({distribution}): its part has shape {expected}, not {local.shape}")
        self.local = local

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_function(cls, world: World, shape: tuple[int, ...] | int,
                      function: Callable[[np.ndarray], Any], dtype: Any = float,
                      distribution: str = "block") -> "DistArray":
        """Each rank builds its part as `function(rows)`, rows being the
        global indices (an int64 array) of the rows it holds.  No
        communication."""
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        rows = np.asarray(rows_of(shape[0], world.pid, world.nprocs, distribution), np.int64)
        return cls(world, shape, np.asarray(function(rows), dtype=dtype), distribution)

    @classmethod
    def zeros(cls, world: World, shape: tuple[int, ...] | int, dtype: Any = float,
              distribution: str = "block") -> "DistArray":
        shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
        rows = rows_of(shape[0], world.pid, world.nprocs, distribution)
        return cls(world, shape, np.zeros((len(rows), *shape[1:]), dtype), distribution)

    @classmethod
    def from_root(cls, world: World, array: Any = None, root: int = 0,
                  distribution: str = "block") -> "DistArray":
        """Split the root's `array` over the ranks (ignored elsewhere).
        1 superstep, h = n*s at the root."""
        parts = None
        if world.pid == root:
            array = np.asarray(array)
            if array.ndim == 0:
                raise ValueError("from_root needs an array with at least one axis")
            parts = [(array.shape, np.ascontiguousarray(array[_index(rows_of(array.shape[0], pid, world.nprocs,
                                                                             distribution))]))
                     for pid in range(world.nprocs)]
        shape, local = world.scatter(parts, root=root)
        return cls(world, shape, local, distribution)

    # -- what it is -----------------------------------------------------------

    @property
    def dtype(self) -> np.dtype:
        return self.local.dtype

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def __repr__(self) -> str:
        return (f"<bsp.DistArray {self.shape} {self.dtype} {self.distribution}, rank {self.world.pid} "
                f"holds rows {_describe(self.rows)}>")

    # -- moving rows ----------------------------------------------------------

    def gather(self, root: int = 0) -> np.ndarray | None:
        """The global array on the root, None elsewhere.  1 superstep,
        h = n*s at the root."""
        parts = self.world.gather(self.local, root=root)
        return None if parts is None else self._assemble(parts)

    def allgather(self) -> np.ndarray:
        """The global array on every rank.  1 superstep, h = n*s."""
        return self._assemble(self.world.allgather(self.local))

    def _assemble(self, parts: list[np.ndarray]) -> np.ndarray:
        whole = np.empty(self.shape, self.dtype)
        for pid, part in enumerate(parts):
            whole[_index(rows_of(self.shape[0], pid, self.world.nprocs, self.distribution))] = part
        return whole

    def redistribute(self, distribution: str) -> "DistArray":
        """The same global array under another distribution.  1 superstep;
        h is at most the rows a rank holds."""
        world = self.world
        rows = np.asarray(self.rows, np.int64)
        owners = owner_of(rows, self.shape[0], world.nprocs, distribution)
        posts = [((dest,), self.local[owners == dest]) for dest in np.unique(owners).tolist()]
        arrived = collectives.superstep(world._engine, Kind.REDISTRIBUTE, posts)
        new_rows = rows_of(self.shape[0], world.pid, world.nprocs, distribution)
        local = np.empty((len(new_rows), *self.shape[1:]), self.dtype)
        for source, part in arrived:
            source_rows = np.asarray(rows_of(self.shape[0], source, world.nprocs, self.distribution), np.int64)
            mine = source_rows[owner_of(source_rows, self.shape[0], world.nprocs, distribution) == world.pid]
            local[_positions(mine, new_rows)] = part
        return DistArray(world, self.shape, local, distribution)

    def transpose(self) -> "DistArray":
        """The transpose of a two-dimensional DistArray, its rows (this one's
        columns) split the same way, block or cyclic.  1 superstep; h is at
        most the rank's share of the array, n*m*s/p rounded up."""
        if self.ndim != 2:
            raise ValueError(f"transpose needs a two-dimensional DistArray, not one of shape {self.shape}")
        world, (n, m) = self.world, self.shape
        posts = []
        for dest in range(world.nprocs):
            part = self.local[:, _index(rows_of(m, dest, world.nprocs, self.distribution))]
            if part.size:
                posts.append(((dest,), np.ascontiguousarray(part)))
        arrived = collectives.superstep(world._engine, Kind.REDISTRIBUTE, posts)
        local = np.empty((len(rows_of(m, world.pid, world.nprocs, self.distribution)), n), self.dtype)
        for source, part in arrived:
            local[:, _index(rows_of(n, source, world.nprocs, self.distribution))] = part.T
        return DistArray(world, (m, n), local, self.distribution)

    def halo(self, width: int = 1, periodic: bool = False, fill: Any = 0) -> np.ndarray:
        """This rank's rows with `width` rows of its neighbours' on each side:
        an array of len(local) + 2*width rows, for stencils.  Beyond the
        global edges the rows wrap around if `periodic`, else hold `fill`.
        Block distribution only.  1 superstep; h = 2*width*s per rank."""
        if self.distribution != "block":
            raise ValueError("halo needs the block distribution: cyclic neighbours do not hold adjacent rows")
        world, n = self.world, self.shape[0]
        if not 0 <= width <= n:
            raise ValueError(f"halo width must be between 0 and the number of rows, {n}; got {width}")
        wanted = [_ghost_rows(rows_of(n, pid, world.nprocs, "block"), width, n, periodic)
                  for pid in range(world.nprocs)]
        mine = np.asarray(self.rows, np.int64)
        posts = []
        for dest, ghosts in enumerate(wanted):
            held = np.isin(ghosts, mine)
            if held.any():
                posts.append(((dest,), self.local[ghosts[held] - self.rows.start]))
        arrived = collectives.superstep(world._engine, Kind.HALO, posts)
        ghosts = wanted[world.pid]
        values = np.full((len(ghosts), *self.shape[1:]), fill, self.dtype)
        for source, part in arrived:
            source_rows = rows_of(n, source, world.nprocs, "block")
            values[(ghosts >= source_rows.start) & (ghosts < source_rows.stop)] = part
        return np.concatenate([values[:width], self.local, values[width:]])

    # -- reductions (the global result, on every rank) ------------------------

    def sum(self) -> Any:
        """Sum of all elements.  1 superstep, h = (p-1)*8."""
        return self.world.allreduce(self.local.sum())

    def min(self) -> Any:
        return self._extreme(np.min, min)

    def max(self) -> Any:
        return self._extreme(np.max, max)

    def mean(self) -> Any:
        return self.sum() / self.size

    def dot(self, other: "DistArray") -> Any:
        """Inner product of two one-dimensional DistArrays of the same shape
        and distribution.  1 superstep."""
        self._check_partner(other)
        if self.ndim != 1:
            raise ValueError("dot is the inner product of one-dimensional DistArrays; "
                             "for others, use (a * b).sum()")
        return self.world.allreduce(np.dot(self.local, other.local))

    def _extreme(self, local_op: Callable[..., Any], combine: Callable[[Any, Any], Any]) -> Any:
        if self.size == 0:
            raise ValueError("the extreme of an empty DistArray is undefined")
        mine = local_op(self.local) if self.local.size else None
        return self.world.allreduce(mine, op=lambda a, b: b if a is None else a if b is None else combine(a, b))

    # -- elementwise numpy ----------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if method != "__call__":
            return NotImplemented
        for operand in inputs + kwargs.get("out", ()):
            if isinstance(operand, DistArray):
                self._check_partner(operand)
        local_inputs = [operand.local if isinstance(operand, DistArray) else operand for operand in inputs]
        if "out" in kwargs:
            kwargs["out"] = tuple(operand.local if isinstance(operand, DistArray) else operand
                                  for operand in kwargs["out"])
        result = getattr(ufunc, method)(*local_inputs, **kwargs)
        if isinstance(result, tuple):
            return tuple(self._wrap(part) for part in result)
        return self._wrap(result)

    def _wrap(self, local: np.ndarray) -> "DistArray":
        return DistArray(self.world, (self.shape[0], *np.shape(local)[1:]), local, self.distribution)

    def _check_partner(self, other: "DistArray") -> None:
        if other.shape[0] != self.shape[0] or other.distribution != self.distribution:
            raise ValueError(f"DistArrays of {other.shape[0]} rows ({other.distribution}) and {self.shape[0]} "
                             f"rows ({self.distribution}) are split differently; redistribute one first")


def rows_of(n: int, pid: int, nprocs: int, distribution: str) -> range:
    """The global rows rank `pid` holds of n rows."""
    if distribution == "cyclic":
        return range(pid, n, nprocs)
    if distribution != "block":
        raise ValueError(f"distribution must be 'block' or 'cyclic', not {distribution!r}")
    base, extra = divmod(n, nprocs)
    start = pid * base + min(pid, extra)
    return range(start, start + base + (pid < extra))


def owner_of(rows: np.ndarray, n: int, nprocs: int, distribution: str) -> np.ndarray:
    """The rank that holds each of `rows` (global indices, an array)."""
    if distribution == "cyclic":
        return rows % nprocs
    base, extra = divmod(n, nprocs)
    boundary = extra * (base + 1)           # rows below belong to the larger blocks
    if base == 0:
        return rows
    return np.where(rows < boundary, rows // (base + 1), extra + (rows - boundary) // base)


def _ghost_rows(rows: range, width: int, n: int, periodic: bool) -> np.ndarray:
    """The global indices of the rows above and below `rows`; -1 where there
    is no row (beyond an edge, not periodic)."""
    ghosts = np.concatenate([np.arange(rows.start - width, rows.start), np.arange(rows.stop, rows.stop + width)])
    if periodic:
        return ghosts % n
    return np.where((ghosts >= 0) & (ghosts < n), ghosts, -1)


def _index(rows: range) -> slice:
    return slice(rows.start, rows.stop, rows.step)


def _positions(rows: np.ndarray, held: range) -> np.ndarray:
    """Where global `rows` sit in the local part holding `held`."""
    return (rows - held.start) // held.step


def _describe(rows: range) -> str:
    if not len(rows):
        return "none"
    if rows.step == 1:
        return f"{rows.start}..{rows.stop - 1}"
    return f"{rows.start}, {rows.start + rows.step}, ... {rows[-1]}"

