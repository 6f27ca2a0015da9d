"""`DistArray`: a global numpy array split over the ranks, along one axis or
several, over a processor grid."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from . import arraykinds, collectives, remap
from .checks import check_pid
from .distribution import Layout, as_index, block_of, describe, layout_of, single_spec
from .distribution import owner_of as owner_of, rows_of as rows_of  # the one-dimensional helpers' old home
from .halo import halo as _halo
from .matmul import summa
from .record import Kind
from .world import World


class DistArray(np.lib.mixins.NDArrayOperatorsMixin):
    """A global array of `shape` split over the ranks: each axis by its
    distribution, over a processor grid with one extent per axis.

    `distribution` is one spec per axis, each "block" (contiguous blocks,
    the first n % P one element longer), "cyclic" (element i on grid
    coordinate i % P), ("block-cyclic", b) (blocks of b dealt round-robin)
    or None (not split); or a single spec, which splits axis 0 only (the
    one-dimensional API: `distribution="cyclic"` splits the rows).  `grid`
    has one extent per axis, 1 where the axis is not split, and multiplies
    to nprocs; None chooses a near-square factorization over the split axes
    (like MPI_Dims_create).  Rank pid sits at grid coordinates row-major in
    pid (as `world.grid`) and holds, as the numpy array `local`, the
    Cartesian product of its index sets: `index(axis)` along each axis,
    `rows` == `index(0)`.  Write back into it through `local`
    (`d.local[...] = values`, or `d.local = new` of the same shape).

    Create it on every rank: `from_function` or `zeros` (no communication),
    or `from_root` (a scatter).  numpy ufuncs and operators work
    elementwise, locally, on DistArrays of the same layout and with
    scalars or arrays that broadcast against `local`.  `sum`, `min`, `max`,
    `mean` and `dot` return the global result on every rank; `gather`,
    `allgather`, `redistribute`, `transpose` and `halo` move elements;
    `A @ B` multiplies matrices (SUMMA, see bsp.matmul).  Each of those is
    one superstep (`@`: one per panel); costs below are for N elements of
    s bytes in all, N/p per rank when balanced.
    """

    def __init__(self, world: World, shape: tuple[int, ...] | int, local: np.ndarray,
                 distribution: Any = "block", grid: Any = None):
        """Wrap this rank's part (`local`) of a global array; prefer the
        constructors.  Raises ValueError for a bad distribution or grid (see
        `bsp.distribution.layout_of`), or if `local` does not have this
        rank's shape under them."""
        layout, given = layout_of(_shape(shape), distribution, grid, world.nprocs)
        self._attach(world, layout, given, local)

    @classmethod
    def _of(cls, world: World, layout: Layout, given: Any, local: np.ndarray) -> "DistArray":
        array = cls.__new__(cls)
        array._attach(world, layout, given, local)
        return array

    def _attach(self, world: World, layout: Layout, given: Any, local: np.ndarray) -> None:
        self.world, self.layout, self.distribution = world, layout, given
        self.shape = layout.shape
        expected = layout.local_shape(world.pid)
        if np.shape(local) != expected:
            raise ValueError(f"rank {world.pid} holds {self._holding()} of a {self.shape} array "
                             f"({self._how()}): its part has shape {expected}, not {np.shape(local)}")
        self.local = local

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_function(cls, world: World, shape: tuple[int, ...] | int, function: Callable[..., Any],
                      dtype: Any = float, distribution: Any = "block", grid: Any = None) -> "DistArray":
        """Each rank builds its part from the global indices it holds: with
        one distribution per axis, as `function(*np.ix_(i0, i1, ...))`
        (broadcast to the part's shape); with a single distribution (axis 0
        split), as `function(rows)`, which must return the rows whole.  The
        index arrays are int64 and read-only.  No communication."""
        layout, given = layout_of(_shape(shape), distribution, grid, world.nprocs)
        indices = layout.indices(world.pid)
        if single_spec(distribution) is not None:
            local = np.asarray(function(indices[0]), dtype=dtype)
        else:
            local = np.empty(layout.local_shape(world.pid), dtype)
            local[...] = function(*np.ix_(*indices))
        return cls._of(world, layout, given, local)

    @classmethod
    def zeros(cls, world: World, shape: tuple[int, ...] | int, dtype: Any = float,
              distribution: Any = "block", grid: Any = None) -> "DistArray":
        """A DistArray of zeros.  No communication."""
        layout, given = layout_of(_shape(shape), distribution, grid, world.nprocs)
        return cls._of(world, layout, given, np.zeros(layout.local_shape(world.pid), dtype))

    @classmethod
    def from_root(cls, world: World, array: Any = None, root: int = 0, distribution: Any = "block",
                  grid: Any = None) -> "DistArray":
        """Split the root's `array` over the ranks (ignored elsewhere).
        1 superstep (a scatter), h = (p-1)/p * N*s at the root.  A bad
        distribution or grid raises ValueError on the root, which every
        other rank then gets as RemoteError."""
        root = check_pid(root, world.nprocs, "root")
        posts = []
        if world.pid == root:
            array = np.asarray(array)
            if array.ndim == 0:
                raise ValueError("from_root needs an array with at least one axis")
            layout, given = layout_of(array.shape, distribution, grid, world.nprocs)
            posts = [((dest,), (array.shape, np.ascontiguousarray(array[_block(layout, dest)])))
                     for dest in range(world.nprocs) if dest != root]
            local = array[_block(layout, root)].copy()
        arrived = collectives.superstep(world.engine, Kind.SCATTER, posts, root)
        if world.pid == root:
            return cls._of(world, layout, given, local)
        [(_, (shape, local))] = arrived
        return cls(world, shape, local, distribution, grid)

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

    @property
    def grid(self) -> tuple[int, ...]:
        """The processor grid: one extent per axis, 1 where not split."""
        return self.layout.grid

    @property
    def coords(self) -> tuple[int, ...]:
        """This rank's coordinates in the grid (row-major in pid)."""
        return self.layout.coords_of(self.world.pid)

    def index(self, axis: int) -> np.ndarray:
        """The global indices (int64, increasing, read-only) that this rank
        holds along `axis`.  Raises ValueError for an axis out of range."""
        if not isinstance(axis, (int, np.integer)) or not -self.ndim <= axis < self.ndim:
            raise ValueError(f"axis {axis!r} is out of range for a {self.ndim}-dimensional DistArray")
        axis = int(axis) % self.ndim
        return self.layout.held(axis, self.coords[axis])

    @property
    def rows(self) -> np.ndarray:
        """`index(0)`: the global rows held here."""
        return self.index(0)

    def __repr__(self) -> str:
        return (f"<bsp.DistArray {self.shape} {self.dtype} ({self._how()}), rank {self.world.pid} "
                f"holds {self._holding()}>")

    def _how(self) -> str:
        if isinstance(self.distribution, str):
            return self.distribution
        if single_spec(self.distribution) is not None:
            return repr(self.distribution)
        return f"distribution {self.distribution!r}, grid {self.grid}"

    def _holding(self) -> str:
        coords = self.coords
        held = [describe(self.layout.held(axis, c)) for axis, c in enumerate(coords)]
        if self.layout.split_axes() == [0]:
            return f"rows {held[0]}"
        return "indices " + " x ".join(held)

    # -- moving elements --------------------------------------------------------

    def gather(self, root: int = 0) -> np.ndarray | None:
        """The global array on the root, None elsewhere.  1 superstep,
        h = (p-1)/p * N*s at the root."""
        root = check_pid(root, self.world.nprocs, "root")
        posts = [((root,), self.local)] if self.world.pid != root else []
        arrived = collectives.superstep(self.world.engine, Kind.GATHER, posts, root)
        return self._assemble(arrived) if self.world.pid == root else None

    def allgather(self) -> np.ndarray:
        """The global array on every rank.  1 superstep, h = (p-1)/p * N*s."""
        others = [pid for pid in range(self.world.nprocs) if pid != self.world.pid]
        posts = [(others, self.local)] if others else []
        return self._assemble(collectives.superstep(self.world.engine, Kind.ALLGATHER, posts))

    def _assemble(self, parts: list[tuple[int, np.ndarray]]) -> np.ndarray:
        whole = np.empty(self.shape, self.dtype)
        for pid, part in [(self.world.pid, self.local), *parts]:
            whole[_block(self.layout, pid)] = part
        return whole

    def redistribute(self, distribution: Any, grid: Any = None) -> "DistArray":
        """The same global array under another distribution and grid (grid
        None: near-square over the split axes).  1 superstep; an element
        moves only if its owner changes, each rank sending each other rank
        one array of exactly the elements it holds that the other will, so
        h is the most bytes any rank must send or receive (plus a header of
        about 100 bytes per message).  Raises ValueError as the constructor."""
        layout, given = layout_of(self.shape, distribution, grid, self.world.nprocs)
        local = remap.fetch(self.world.engine, arraykinds.REDISTRIBUTE, self.layout, self.local, layout.indices)
        return DistArray._of(self.world, layout, given, local)

    def transpose(self) -> "DistArray":
        """The transpose of a two-dimensional DistArray, under the same
        distribution and grid as this one (so `a + a.transpose()` works).
        1 superstep of its own kind; h is at most the rank's part, more
        exactly the elements whose owner changes.  Raises ValueError for an
        array that is not two-dimensional."""
        if self.ndim != 2:
            raise ValueError(f"transpose needs a two-dimensional DistArray, not one of shape {self.shape}")
        layout, given = layout_of(self.shape[::-1], self.distribution, self.grid, self.world.nprocs)
        local = remap.fetch(self.world.engine, arraykinds.TRANSPOSE, self.layout, self.local, layout.indices,
                            axes=(1, 0))
        return DistArray._of(self.world, layout, given, local)

    def halo(self, width: int | Sequence[int] = 1, periodic: bool = False, fill: Any = 0) -> np.ndarray:
        """This rank's part padded by `width` ghosts on each side of every
        split axis (distribution not None), corners included: the elements
        its neighbours hold, for stencils.  `width` is an int or one per
        axis (0 for axes not split).  Beyond the global edges the ghosts
        wrap around if `periodic`, else hold `fill`.  Split axes must be
        "block" (see bsp.halo).  1 superstep; h = the ghosts, about
        2 * width * (the part's faces) * s per rank."""
        return _halo(self.world.engine, self.layout, self.local, width, periodic, fill)

    def __matmul__(self, other: Any) -> "DistArray":
        # Defined here rather than left to numpy's operator mixin, so that
        # call sites (profiles, mismatch messages) name the user's line.
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> "DistArray":
        return _matmul(other, self)

    def matmul(self, other: "DistArray", panels: int | None = None) -> "DistArray":
        """`self @ other`, in `panels` supersteps (SUMMA: see bsp.matmul,
        which gives the cost and the errors)."""
        return _matmul(self, other, panels)

    # -- reductions (the global result, on every rank) ------------------------

    def sum(self) -> Any:
        """Sum of all elements.  1 superstep, h = (p-1)*8."""
        return self.world.allreduce(self.local.sum())

    def min(self) -> Any:
        """Smallest element.  1 superstep.  ValueError if empty."""
        return self._extreme(np.min, min)

    def max(self) -> Any:
        """Largest element.  1 superstep.  ValueError if empty."""
        return self._extreme(np.max, max)

    def mean(self) -> Any:
        """Mean of all elements.  1 superstep."""
        return self.sum() / self.size

    def dot(self, other: "DistArray") -> Any:
        """Inner product of two one-dimensional DistArrays of the same
        layout.  1 superstep.  (For matrices: `@`.)"""
        self._check_partner(other)
        if self.ndim != 1:
            raise ValueError(f"dot is the inner product of one-dimensional DistArrays, not of shape {self.shape}; "
                             "for others, use (a * b).sum(), or a @ b for the matrix product")
        return self.world.allreduce(np.dot(self.local, other.local))

    def _extreme(self, local_op: Callable[..., Any], combine: Callable[[Any, Any], Any]) -> Any:
        if self.size == 0:
            raise ValueError("the extreme of an empty DistArray is undefined")
        mine = local_op(self.local) if self.local.size else None
        return self.world.allreduce(mine, op=lambda a, b: b if a is None else a if b is None else combine(a, b))

    # -- elementwise numpy ----------------------------------------------------

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        if ufunc is np.matmul and method == "__call__":
            return _matmul(*inputs, **kwargs)
        if method != "__call__" or ufunc.signature is not None:
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
        """A ufunc's local result as a DistArray of this one's layout (axes
        that are not split take the length numpy broadcast them to)."""
        if np.ndim(local) != self.ndim:
            raise ValueError(f"an elementwise operation on a DistArray of shape {self.shape} gave a local part "
                             f"of {np.ndim(local)} axes, not {self.ndim}: broadcast only along its own axes")
        shape = tuple(length if spec is None else n
                      for length, n, spec in zip(np.shape(local), self.shape, self.layout.specs))
        layout = self.layout
        if shape != self.shape:
            layout, _ = layout_of(shape, self.distribution, self.grid, self.world.nprocs)
        return DistArray._of(self.world, layout, self.distribution, local)

    def _check_partner(self, other: "DistArray") -> None:
        """Raise ValueError unless `other` has the same distribution and grid
        as this one, and the same length along every split axis (axes not
        split may differ, for numpy's broadcasting).  Compared as declared,
        so that a program that mixes layouts fails at every nprocs alike."""
        mine, theirs = self.layout, other.layout
        if (mine.specs != theirs.specs or mine.grid != theirs.grid
                or any(a != b for a, b, spec in zip(mine.shape, theirs.shape, mine.specs) if spec is not None)):
            raise ValueError(f"DistArrays of shape {other.shape} ({other._how()}) and of shape {self.shape} "
                             f"({self._how()}) are split differently; redistribute one first")


def _shape(shape: Any) -> tuple[int, ...]:
    shape = (shape,) if isinstance(shape, (int, np.integer)) else tuple(shape)
    if not shape:
        raise ValueError("a DistArray has at least one axis, along which it is split")
    if not all(isinstance(n, (int, np.integer)) and n >= 0 for n in shape):
        raise ValueError(f"a DistArray's shape must be non-negative ints, not {shape!r}")
    return tuple(int(n) for n in shape)


def _block(layout: Layout, pid: int) -> tuple[Any, ...]:
    """The numpy index of rank `pid`'s part in the global array."""
    return block_of([as_index(indices) for indices in layout.indices(pid)])


def _matmul(a: Any, b: Any, panels: int | None = None, **unsupported: Any) -> DistArray:
    """`a @ b` (SUMMA: see bsp.matmul.summa for the cost and its errors).
    Raises TypeError unless both are DistArrays, or for numpy keywords such
    as out=."""
    if unsupported:
        raise TypeError(f"A @ B on DistArrays takes no numpy keywords, not {sorted(unsupported)}")
    if not isinstance(a, DistArray) or not isinstance(b, DistArray):
        raise TypeError(f"A @ B needs two DistArrays, not {type(a).__name__} @ {type(b).__name__}")
    layout, given, product = summa(a, b, panels)
    return DistArray._of(a.world, layout, given, product)
