"""`DistArray`: a global numpy array split over the ranks, along one axis or
several, over a processor grid."""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
from numpy.typing import DTypeLike

from bsp.arrays import creation, superstep_kinds
from bsp.objects import collectives
from bsp.arrays import remap
from bsp.base.argument_checks import check_pid
from bsp.arrays.distribution import Layout, as_index, block_of, describe, layout_of, single_spec
from bsp.arrays.distribution import owner_of as owner_of, rows_of as rows_of
from bsp.arrays.distribution import Distribution, GridShape
from bsp.arrays.halo import halo as _halo
from bsp.arrays import numpy_functions
from bsp.arrays.operators import Operators
from bsp.core.sync_record import Kind
from bsp.world import World


class DistArray(Operators):
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
    (`d.local[...] = values`, or `d.local = new` of the same shape and
    dtype kind: see `local`).

    Create it on every rank: `from_function` or `zeros` (no communication),
    or `from_root` (a scatter).  numpy ufuncs and operators work
    elementwise on scalars, ndarrays and DistArrays broadcast by their
    global shapes, locally where the operands share the result's layout
    (`bsp.arrays.elementwise`); reductions and scans (`sum`, `mean`,
    `argmax`, `cumsum`, ...) give numpy's result, a DistArray or a scalar
    on every rank (`bsp.arrays.reductions`); `gather`,
    `allgather`, `redistribute`, `transpose` and `halo` move elements;
    `A @ B` multiplies matrices (SUMMA, see [`bsp.arrays.matmul`][]).  Each of those is
    one superstep (`@`: one per panel); costs below are for N elements of
    s bytes in all, N/p per rank when balanced.
    """

    def __init__(self, world: World, shape: tuple[int, ...] | int, local: np.ndarray,
                 distribution: Distribution = "block", grid: GridShape = None):
        """Wrap this rank's part (`local`) of a global array; prefer the
        constructors.  Raises ValueError for a bad distribution or grid (see
        `bsp.arrays.distribution.layout_of`), or if `local` does not have this
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
        self._local = self._of_part_shape(np.asarray(local))

    # -- construction ---------------------------------------------------------

    @classmethod
    def from_function(cls, world: World, shape: tuple[int, ...] | int, function: Callable[..., Any],
                      dtype: DTypeLike = float, distribution: Distribution = "block",
                      grid: GridShape = None) -> "DistArray":
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
    def zeros(cls, world: World, shape: Any, dtype: DTypeLike = float, distribution: Distribution = "block",
              grid: GridShape = None) -> "DistArray":
        """np.zeros(shape, dtype) split by `distribution` over `grid` (see
        the class).  No communication.  Raises TypeError for a shape that
        is not an int or a sequence of ints (a str included), ValueError
        for a negative length or a bad distribution or grid."""
        return cls._of(world, *creation.blank(np.zeros, world, shape, dtype, distribution, grid))

    @classmethod
    def from_root(cls, world: World, array: Any = None, root: int = 0, distribution: Distribution = "block",
                  grid: GridShape = None) -> "DistArray":
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
    def local(self) -> np.ndarray:
        """This rank's part: the global elements at index(0) x index(1) x
        ... (np.ix_ of them), a numpy array.  Write into it in place
        (`d.local[...] = values`, numpy's casting), or assign a whole new
        part: `d.local = part` takes an array of exactly this rank's part
        shape and of the DistArray's dtype kind; one of the same kind but
        another dtype (float32 into float64) is cast to the DistArray's
        dtype, which never changes, so that it stays the same on every
        rank.  Raises ValueError for another shape, TypeError for another
        kind (ints into a float DistArray included: astype them first)."""
        return self._local

    @local.setter
    def local(self, part: Any) -> None:
        part = self._of_part_shape(np.asarray(part))
        if part.dtype.kind != self.dtype.kind:
            raise TypeError(f"cannot assign a part of dtype {part.dtype} to the local part of a {self.shape} "
                            f"DistArray of dtype {self.dtype}: its dtype is fixed; use part.astype({self.dtype})")
        self._local = part if part.dtype == self.dtype else part.astype(self.dtype)

    def _of_part_shape(self, part: np.ndarray) -> np.ndarray:
        expected = self.layout.local_shape(self.world.pid)
        if part.shape != expected:
            raise ValueError(f"rank {self.world.pid} holds {self._holding()} of a {self.shape} array "
                             f"({self._how()}): its part has shape {expected}, not {part.shape}")
        return part

    @property
    def dtype(self) -> np.dtype:
        return self._local.dtype

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

    def redistribute(self, distribution: Distribution, grid: GridShape = None) -> "DistArray":
        """The same global array under another distribution and grid (grid
        None: near-square over the split axes).  1 superstep; an element
        moves only if its owner changes, each rank sending each other rank
        one array of exactly the elements it holds that the other will, so
        h is the most bytes any rank must send or receive (plus a header of
        about 100 bytes per message).  Raises ValueError as the constructor."""
        layout, given = layout_of(self.shape, distribution, grid, self.world.nprocs)
        local = remap.fetch(self.world.engine, superstep_kinds.REDISTRIBUTE, self.layout, self.local, layout.indices)
        return DistArray._of(self.world, layout, given, local)

    def halo(self, width: int | Sequence[int] = 1, periodic: bool = False, fill: Any = 0) -> np.ndarray:
        """This rank's part padded by `width` ghosts on each side of every
        split axis (distribution not None), corners included: the elements
        its neighbours hold, for stencils.  `width` is an int or one per
        axis (0 for axes not split).  Beyond the global edges the ghosts
        wrap around if `periodic`, else hold `fill`.  Split axes must be
        "block" (see [`bsp.arrays.halo`][]).  1 superstep; h = the ghosts, about
        2 * width * (the part's faces) * s per rank."""
        return _halo(self.world.engine, self.layout, self.local, width, periodic, fill)

    def __matmul__(self, other: Any) -> Any:
        # Defined here rather than left to numpy's operator mixin, so that
        # call sites (profiles, mismatch messages) name the user's line.
        return _matmul(self, other)

    def __rmatmul__(self, other: Any) -> Any:
        return _matmul(other, self)

    def matmul(self, other: Any, panels: int | None = None) -> Any:
        """`self @ other` (bsp.arrays.linalg: every case numpy allows, costs
        and errors); for two split matrices SUMMA, in `panels` supersteps
        (bsp.arrays.matmul)."""
        return _matmul(self, other, panels)

    # -- layouts and creation (bsp.arrays.creation) ----------------------------

    @classmethod
    def empty(cls, world: World, shape: Any, dtype: DTypeLike = float, distribution: Distribution = "block",
              grid: GridShape = None) -> "DistArray":
        """np.empty(shape, dtype), split as `zeros`: values undefined.  No
        communication.  Raises as `zeros`."""
        return cls._of(world, *creation.blank(np.empty, world, shape, dtype, distribution, grid))

    @classmethod
    def ones(cls, world: World, shape: Any, dtype: DTypeLike = float, distribution: Distribution = "block",
             grid: GridShape = None) -> "DistArray":
        """np.ones(shape, dtype), split as `zeros`.  No communication.
        Raises as `zeros`."""
        return cls.full(world, shape, 1, np.dtype(dtype), distribution, grid)

    @classmethod
    def full(cls, world: World, shape: Any, fill_value: Any, dtype: DTypeLike | None = None,
             distribution: Distribution = "block", grid: GridShape = None) -> "DistArray":
        """np.full(shape, fill_value, dtype): fill_value a scalar or an
        array that broadcasts to `shape` (each rank takes its part), cast
        as numpy casts it; dtype None is np.array(fill_value).dtype.  No
        communication.  Raises as `zeros`, and as np.full (ValueError for
        a fill_value that does not broadcast, OverflowError for one the
        dtype cannot hold)."""
        return cls._of(world, *creation.full(world, shape, fill_value, dtype, distribution, grid))

    @classmethod
    def arange(cls, world: World, start: Any, stop: Any = None, step: Any = 1, dtype: DTypeLike | None = None,
               distribution: Distribution = "block", grid: GridShape = None) -> "DistArray":
        """np.arange(start, stop, step, dtype), one-dimensional: numpy's
        length, dtype and values bit for bit (see bsp.arrays.creation.arange),
        each rank computing its own.  No communication.  Raises what
        np.arange raises; TypeError for a dtype that is not numeric."""
        return cls._of(world, *creation.arange(world, start, stop, step, dtype, distribution, grid))

    @classmethod
    def linspace(cls, world: World, start: Any, stop: Any, num: Any = 50, endpoint: bool = True,
                 retstep: bool = False, dtype: DTypeLike | None = None, axis: Any = 0,
                 distribution: Distribution = "block", grid: GridShape = None) -> Any:
        """np.linspace(start, stop, num, endpoint, retstep, dtype) of scalar
        start and stop: numpy's values bit for bit; with retstep, the
        tuple (DistArray, step).  No communication.  Raises numpy's errors
        (TypeError for num not an int, ValueError for num < 0, AxisError
        for an axis other than 0), and ValueError for array start or stop."""
        part, step = creation.linspace(world, start, stop, num, endpoint, retstep, dtype, axis, distribution,
                                       grid)
        array = cls._of(world, *part)
        return (array, step) if retstep else array

    @classmethod
    def eye(cls, world: World, n: Any, m: Any = None, k: Any = 0, dtype: DTypeLike = float,
            distribution: Distribution = "block", grid: GridShape = None) -> "DistArray":
        """np.eye(n, m, k, dtype): ones on the k-th diagonal.  No
        communication.  Raises TypeError for n, m or k not an int,
        ValueError for a negative n or m, or as `zeros`."""
        return cls._of(world, *creation.eye(world, n, m, k, dtype, distribution, grid))

    @classmethod
    def from_array(cls, world: World, a: Any, distribution: Distribution = "block",
                   grid: GridShape = None) -> "DistArray":
        """The array `a`, which every rank has whole: each rank keeps a copy
        of its own part.  No communication.  Raises ValueError for a 0-d
        array, or as `zeros`."""
        return cls._of(world, *creation.from_array(world, a, distribution, grid))

    @classmethod
    def from_local(cls, world: World, local: Any, axis: int = 0) -> "DistArray":
        """The array whose parts along `axis` are the ranks' `local` arrays
        in pid order (any sizes, 0 too; wrapped, not copied): distribution
        ("block", sizes) along `axis` and None elsewhere, grid nprocs along
        `axis`.  One superstep (an allgather of the part shapes: h = p - 1
        shapes).  Raises, on every rank, ValueError naming the ranks when
        the parts disagree in ndim, dtype or a length other than along
        `axis`; AxisError for an axis out of range; TypeError for one that
        is not an int."""
        return cls._of(world, *creation.from_local(world, local, axis))

    def counts(self, axis: int = 0) -> tuple[int, ...]:
        """The part sizes along `axis`, one per grid coordinate along it,
        in grid order (for any distribution; (n,) on an axis that is not
        split).  No communication.  Raises AxisError (a ValueError) for an
        axis out of range."""
        return creation.counts(self.layout, axis)

    def balance(self) -> "DistArray":
        """The same values with regular "block" parts along every split
        axis (cyclic and ("block", sizes) axes included), over the same
        grid.  One superstep, h = the elements that change owner (at most
        the part); a local copy, with no superstep, if already balanced."""
        return DistArray._of(self.world, *creation.balance(self.world, self.layout, self.distribution, self.local))

    # -- global indexing and shape (bsp.arrays.global_indexing, bsp.arrays.shape) ----

    def __getitem__(self, key: Any) -> Any:
        """numpy's `d[key]` with GLOBAL indices: ints, slices, Ellipsis,
        None, integer arrays, boolean masks (an ndarray, or a DistArray of
        d's shape).  Collective.  Layouts, costs and errors: see
        bsp.arrays.global_indexing.getitem."""
        from bsp.arrays import global_indexing
        return global_indexing.getitem(self, key)

    def __setitem__(self, key: Any, value: Any) -> None:
        """numpy's `d[key] = value` with GLOBAL indices; `value` a scalar,
        an ndarray or a DistArray.  Collective.  Costs and errors: see
        bsp.arrays.global_indexing.setitem."""
        from bsp.arrays import global_indexing
        global_indexing.setitem(self, key, value)

    def reshape(self, *shape: Any, order: str = "C") -> Any:
        """numpy's `d.reshape(shape)` or `d.reshape(*shape)`: see
        bsp.arrays.shape.reshape (one superstep, "block" along axis 0)."""
        from bsp.arrays import shape as _shape_ops
        return _shape_ops.reshape(self, shape[0] if len(shape) == 1 else shape, order=order)

    def ravel(self, order: str = "C") -> "DistArray":
        """numpy's `d.ravel()`: see bsp.arrays.shape.ravel."""
        from bsp.arrays import shape as _shape_ops
        return _shape_ops.ravel(self, order)

    def flatten(self, order: str = "C") -> "DistArray":
        """numpy's `d.flatten()`: a copy in C order, as `ravel`."""
        return self.ravel(order)

    def transpose(self, *axes: Any) -> "DistArray":
        """numpy's `d.transpose(*axes)` (`d.transpose()` reverses the
        axes), under this array's distribution and grid, axis by axis (so
        `a + a.transpose()` works, and a 1-D-API array stays split along
        axis 0): one superstep ending as "transpose" (none when no element
        changes owner); h at most the rank's part, more exactly the
        elements whose owner changes.  See bsp.arrays.shape.transpose."""
        from bsp.arrays import shape as _shape_ops
        order: Any = axes[0] if len(axes) == 1 and (axes[0] is None or isinstance(axes[0], (tuple, list))) else axes
        return _shape_ops.transpose(self, order if order != () else None)

    @property
    def T(self) -> "DistArray":
        """`d.transpose()`."""
        return self.transpose()

    def swapaxes(self, axis1: int, axis2: int) -> "DistArray":
        """numpy's `d.swapaxes(axis1, axis2)`: see bsp.arrays.shape.swapaxes."""
        from bsp.arrays import shape as _shape_ops
        return _shape_ops.swapaxes(self, axis1, axis2)

    def squeeze(self, axis: Any = None) -> Any:
        """numpy's `d.squeeze(axis)`: see bsp.arrays.shape.squeeze."""
        from bsp.arrays import shape as _shape_ops
        return _shape_ops.squeeze(self, axis)

    # -- sorting, comparing, linear algebra (bsp.arrays.sorting, .comparing, .linalg) --

    def sort(self, axis: int = -1, kind: str | None = None, order: Any = None, *, stable: bool | None = None) -> None:
        """Sort in place, as `ndarray.sort`: this DistArray becomes
        `np.sort(self, axis)`, values and layout (numpy's stable order; see
        bsp.arrays.sorting for the cost: none along an axis that is not
        split, else 3 supersteps).  numpy's errors for axis, kind, stable
        (axis=None is ndarray.sort's TypeError); TypeError for `order`."""
        np.empty((0,) * self.ndim, self.dtype).sort(axis=axis, kind=kind, stable=stable)  # type: ignore[arg-type]
        done = numpy_functions.call(np.sort, (self,), dict(axis=axis, kind=kind, order=order, stable=stable))
        self._attach(self.world, done.layout, done.distribution, done.local)

    def argsort(self, axis: int | None = -1, kind: str | None = None, order: Any = None, *,
                stable: bool | None = None) -> "DistArray":
        """`np.argsort(self, axis)`, in numpy's stable order (bsp.arrays.sorting)."""
        indices: DistArray = numpy_functions.call(np.argsort, (self,), dict(axis=axis, kind=kind, order=order,
                                                                            stable=stable))
        return indices

    # -- reductions and scans (bsp.arrays.reductions: results, costs, errors) ---

    def sum(self, *args: Any, **kwargs: Any) -> Any:
        """np.sum(self, axis=None, dtype=None, out=None, keepdims=False,
        initial=..., where=...): a DistArray, or numpy's scalar on every
        rank for a 0-d result (axis=None).  No superstep unless a reduced
        axis is split, else one (see bsp.arrays.reductions)."""
        return numpy_functions.call(np.sum, (self, *args), kwargs)

    def prod(self, *args: Any, **kwargs: Any) -> Any:
        """np.prod(self, ...): as `sum`."""
        return numpy_functions.call(np.prod, (self, *args), kwargs)

    def min(self, *args: Any, **kwargs: Any) -> Any:
        """np.min(self, axis=None, out=None, keepdims=False, initial=...,
        where=...): as `sum`; ValueError (numpy's) for an empty reduction."""
        return numpy_functions.call(np.min, (self, *args), kwargs)

    def max(self, *args: Any, **kwargs: Any) -> Any:
        """np.max(self, ...): as `min`."""
        return numpy_functions.call(np.max, (self, *args), kwargs)

    def mean(self, *args: Any, **kwargs: Any) -> Any:
        """np.mean(self, axis=None, dtype=None, out=None, keepdims=False,
        where=...): as `sum`, 2 words per partial."""
        return numpy_functions.call(np.mean, (self, *args), kwargs)

    def var(self, *args: Any, **kwargs: Any) -> Any:
        """np.var(self, axis=None, dtype=None, out=None, ddof=0,
        keepdims=False, where=...): as `sum`, 3 words per partial."""
        return numpy_functions.call(np.var, (self, *args), kwargs)

    def std(self, *args: Any, **kwargs: Any) -> Any:
        """np.std(self, ...): as `var`."""
        return numpy_functions.call(np.std, (self, *args), kwargs)

    def argmin(self, *args: Any, **kwargs: Any) -> Any:
        """np.argmin(self, axis=None, out=None, keepdims=False): global
        indices (flat, C order, for axis=None); as `sum`, 2 words per partial."""
        return numpy_functions.call(np.argmin, (self, *args), kwargs)

    def argmax(self, *args: Any, **kwargs: Any) -> Any:
        """np.argmax(self, ...): as `argmin`."""
        return numpy_functions.call(np.argmax, (self, *args), kwargs)

    def all(self, *args: Any, **kwargs: Any) -> Any:
        """np.all(self, axis=None, out=None, keepdims=False, where=...): as `sum`."""
        return numpy_functions.call(np.all, (self, *args), kwargs)

    def any(self, *args: Any, **kwargs: Any) -> Any:
        """np.any(self, ...): as `all`."""
        return numpy_functions.call(np.any, (self, *args), kwargs)

    def cumsum(self, *args: Any, **kwargs: Any) -> Any:
        """np.cumsum(self, axis=None, dtype=None, out=None): a DistArray,
        "block" along the scanned axis (flattened in C order for axis=None).
        One superstep if that axis is split, one more if it is not "block"
        (see bsp.arrays.reductions)."""
        return numpy_functions.call(np.cumsum, (self, *args), kwargs)

    def cumprod(self, *args: Any, **kwargs: Any) -> Any:
        """np.cumprod(self, ...): as `cumsum`."""
        return numpy_functions.call(np.cumprod, (self, *args), kwargs)

    def dot(self, other: Any) -> Any:
        """np.dot(self, other) when bsp.arrays registers it (see
        bsp.arrays.linalg); else the inner product of two one-dimensional
        arrays of the same length, `other` a DistArray of any layout or an
        ndarray: numpy's scalar on every rank, one superstep (h = p-1
        words), one more if `other` must move to this one's layout.  Else
        ValueError naming both shapes."""
        if np.dot in numpy_functions.HANDLED:
            return numpy_functions.call(np.dot, (self, other), {})
        shape = other.shape if isinstance(other, DistArray) else np.shape(other)
        if self.ndim != 1 or shape != self.shape:
            raise ValueError(f"shapes {self.shape} and {shape} not aligned: d.dot(other) is the inner product of "
                             "one-dimensional arrays of the same length; a @ b multiplies matrices")
        product = self * other
        return product.sum(dtype=product.dtype)

    # -- elementwise numpy (bsp.arrays.elementwise: layouts, costs, errors) -----

    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        """numpy's ufunc protocol: `ufunc(*inputs)` with scalars, ndarrays
        and DistArrays broadcast by their global shapes, the result in the
        first DistArray's layout (see bsp.arrays.elementwise)."""
        if ufunc is np.matmul and method == "__call__":
            return _matmul(*inputs, **kwargs)
        return numpy_functions.call(np.ufunc, (ufunc, method, *inputs), kwargs)

    def __array_function__(self, function: Any, types: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        """numpy's function protocol: the functions bsp.arrays registers
        (bsp.arrays.numpy_functions); any other is a TypeError naming it."""
        return numpy_functions.call(function, args, kwargs)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        """Refused: a DistArray is not one rank's ndarray (TypeError)."""
        raise TypeError(f"a bsp.DistArray of shape {self.shape} is not converted to a numpy array implicitly: "
                        "d.allgather() is the whole array (on every rank), d.local this rank's part")

    def astype(self, dtype: Any, order: Any = "K", casting: Any = "unsafe", subok: bool = True,
               copy: bool = True) -> "DistArray":
        """The array cast to `dtype`, as ndarray.astype (self when copy is
        False and the dtype is already `dtype`).  No communication.  numpy's
        TypeError when `casting` forbids it."""
        local = self.local.astype(dtype, order, casting, subok, copy)
        return self if local is self.local else DistArray._of(self.world, self.layout, self.distribution, local)

    def copy(self, order: Any = "C") -> "DistArray":
        """A copy, same layout.  No communication."""
        return DistArray._of(self.world, self.layout, self.distribution, self.local.copy(order))

    def __bool__(self) -> bool:
        """The truth of a one-element array, on every rank (one superstep,
        h = p-1 words); ValueError as numpy for an empty or a larger one."""
        if self.size == 0:
            raise ValueError("The truth value of an empty array is ambiguous. Use `array.size > 0` to check "
                             "that an array is not empty.")
        if self.size > 1:
            raise ValueError("The truth value of an array with more than one element is ambiguous. "
                             "Use a.any() or a.all()")
        return bool(self.any())

    def __len__(self) -> int:
        """The global length of axis 0, as numpy.  No communication."""
        return self.shape[0]

    def __iter__(self) -> Any:
        """Refused (TypeError): iterating would move the rows one by one."""
        raise TypeError(f"iterating over a bsp.DistArray of shape {self.shape} is not supported: d.allgather() "
                        "is the whole array, d.local this rank's part; index it with global indices (d[i])")


def _shape(shape: Any) -> tuple[int, ...]:
    """`shape` checked as numpy does (see bsp.arrays.creation.check_shape)."""
    return creation.check_shape(shape)


def _block(layout: Layout, pid: int) -> tuple[Any, ...]:
    """The numpy index of rank `pid`'s part in the global array."""
    return block_of([as_index(indices) for indices in layout.indices(pid)])


def _matmul(a: Any, b: Any, panels: int | None = None, **keywords: Any) -> Any:
    """`a @ b` by numpy's rules (bsp.arrays.linalg.matmul: the algorithms,
    their costs and errors; SUMMA for split matrices, in `panels` supersteps)."""
    if panels is not None:
        keywords["panels"] = panels
    return numpy_functions.call(np.matmul, (a, b), keywords)
