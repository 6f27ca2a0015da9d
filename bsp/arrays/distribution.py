"""How a DistArray's elements are laid out over the ranks: pure index
arithmetic, no communication.

A *layout* is a global shape, a distribution per axis and a processor grid
with one extent per axis.  Rank `pid` sits at grid coordinates
`coords_of(pid)` (row-major in pid, as `world.grid`) and holds the Cartesian
product of one index set per axis, the set that axis's distribution gives
its coordinate:

- `"block"`: contiguous blocks, the first n % P coordinates one element
  more than the others (coordinate c holds lo..hi-1);
- `"cyclic"`: element i on coordinate i % P;
- `("block-cyclic", b)`: blocks of b elements dealt round-robin, element i
  on coordinate (i // b) % P (cyclic is block-cyclic with b = 1);
- `("block", sizes)`: contiguous blocks of the given sizes, one per
  coordinate in order (0 too), adding up to the axis's length;
- `None`: the axis is not split (its grid extent is 1).

A layout whose every axis is None is *replicated*: its grid is all 1s at
any nprocs and every rank sits at coordinates (0, ..., 0), holding it all.

Every map is vectorized: owners and local positions of whole index arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Literal, Optional, Sequence, Union

import numpy as np

from bsp.objects.grid import dims_create

Spec = Any      # "block", "cyclic", ("block-cyclic", b), ("block", sizes) or None
SPLITTERS = ("block", "cyclic")
EXPECTED = "'block', 'cyclic', ('block-cyclic', b), ('block', sizes) or None"

# The public spellings of a layout, for the signatures of DistArray's calls.
AxisDistribution = Union[None, Literal["block", "cyclic"], tuple[Literal["block-cyclic"], int],
                         tuple[Literal["block"], Sequence[int]]]
"""How one axis is split: `"block"`, `"cyclic"`, `("block-cyclic", b)`,
`("block", sizes)`, or None for an axis that is not split."""

Distribution = Union[AxisDistribution, Sequence[AxisDistribution]]
"""A DistArray's distribution: one AxisDistribution per axis, or a single
one, which splits the rows (axis 0) alone."""

GridShape = Optional[Sequence[int]]
"""A processor grid: one extent per axis (1 where the axis is not split),
multiplying to the number of ranks; None chooses a near-square grid over
the split axes, like MPI_Dims_create."""


@dataclass(frozen=True)
class Axis:
    """The placement of one axis of n elements over `procs` grid
    coordinates: kind "block" or "cyclic" (with block size b; plain cyclic
    is b = 1).  A block axis has parts of the given `sizes` in coordinate
    order, or, with sizes None, the regular split (the first n % procs
    parts one longer); `_axis` keeps sizes None whenever they are the
    regular ones, so that equal axes place elements alike.  An axis that
    is not split is one block on one coordinate."""

    n: int
    kind: str
    b: int
    procs: int
    sizes: tuple[int, ...] | None = None

    @cached_property
    def starts(self) -> np.ndarray:
        """A block axis's part boundaries: coordinate c holds
        starts[c]..starts[c+1]-1 (procs + 1 values, int64)."""
        return np.concatenate(([0], np.cumsum(self.counts(), dtype=np.int64))).astype(np.int64)

    def counts(self) -> tuple[int, ...]:
        """The number of elements at each coordinate, in coordinate order."""
        if self.sizes is not None:
            return self.sizes
        if self.kind == "cyclic":
            rounds, rest = divmod(self.n, self.b * self.procs)
            return tuple(rounds * self.b + min(max(rest - c * self.b, 0), self.b) for c in range(self.procs))
        base, extra = divmod(self.n, self.procs)
        return tuple(base + (c < extra) for c in range(self.procs))

    def indices(self, coord: int) -> np.ndarray:
        """The global indices (int64, increasing) coordinate `coord` holds."""
        if self.kind == "cyclic":
            starts = np.arange(coord * self.b, self.n, self.b * self.procs, dtype=np.int64)
            held = (starts[:, None] + np.arange(self.b, dtype=np.int64)).ravel()
            return held[held < self.n]
        start, stop = self.span(coord)
        return np.arange(start, stop, dtype=np.int64)

    def span(self, coord: int) -> tuple[int, int]:
        """[start, stop) of a block axis."""
        return int(self.starts[coord]), int(self.starts[coord + 1])

    def owner(self, index: np.ndarray) -> np.ndarray:
        """The grid coordinate along this axis that holds each global index."""
        if self.kind == "cyclic":
            return (index // self.b) % self.procs
        # the last part starting at or before the index: parts of 0 elements start where the next does
        owners: np.ndarray = np.searchsorted(self.starts, index, side="right") - 1
        return owners

    def position(self, index: np.ndarray) -> np.ndarray:
        """Where each global index sits in its owner's local part."""
        if self.kind == "cyclic":
            positions: np.ndarray = (index // (self.b * self.procs)) * self.b + index % self.b
            return positions
        positions = index - self.starts[self.owner(index)]
        return positions


class Layout:
    """A global `shape` over a processor `grid` of `nprocs` ranks, one
    distribution spec per axis (normalized: see `normalize`).  Layouts
    compare equal when every rank holds the same elements at the same
    places under both.  `replicated`: no axis is split, every rank holds
    the whole array (the grid is all 1s, whatever nprocs)."""

    def __init__(self, shape: tuple[int, ...], specs: tuple[Spec, ...], grid: tuple[int, ...], nprocs: int):
        self.shape, self.specs, self.grid, self.nprocs = shape, specs, grid, nprocs
        self.ndim = len(shape)
        self.replicated = all(spec is None for spec in specs)
        self.axes = tuple(_axis(n, spec, procs) for n, spec, procs in zip(shape, specs, grid))
        self._held: dict[tuple[int, int], np.ndarray] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.axes == other.axes

    def __hash__(self) -> int:
        return hash(self.axes)

    def __repr__(self) -> str:
        return f"Layout(shape={self.shape}, distribution={self.specs}, grid={self.grid})"

    def coords_of(self, pid: int) -> tuple[int, ...]:
        """Grid coordinates of rank `pid`, row-major; (0, ..., 0) for
        every rank of a replicated layout."""
        if self.replicated:
            return (0,) * self.ndim
        return tuple(int(c) for c in np.unravel_index(pid, self.grid))

    def rank_of(self, coords: Sequence[int]) -> int:
        return int(np.ravel_multi_index(tuple(coords), self.grid))

    def held(self, axis: int, coord: int) -> np.ndarray:
        """Global indices along `axis` held at grid coordinate `coord`
        (cached; do not modify)."""
        key = (axis, coord)
        held = self._held.get(key)
        if held is None:
            held = self._held[key] = self.axes[axis].indices(coord)
            held.flags.writeable = False
        return held

    def indices(self, pid: int) -> tuple[np.ndarray, ...]:
        """Per axis, the global indices rank `pid` holds."""
        return tuple(self.held(axis, coord) for axis, coord in enumerate(self.coords_of(pid)))

    def block(self, pid: int) -> tuple[Any, ...]:
        """The numpy index of rank `pid`'s part in the global array (views
        where every axis's indices are a progression)."""
        return block_of([as_index(indices) for indices in self.indices(pid)])

    def local_shape(self, pid: int) -> tuple[int, ...]:
        return tuple(len(held) for held in self.indices(pid))

    def split_axes(self) -> list[int]:
        """The axes whose distribution is not None."""
        return [axis for axis, spec in enumerate(self.specs) if spec is not None]

    def counts(self, axis: int) -> tuple[int, ...]:
        """The part sizes along `axis`, one per grid coordinate, in order."""
        return self.axes[axis].counts()

    def balanced(self) -> tuple[Spec, ...]:
        """The specs with every split axis regular "block"."""
        return tuple(None if spec is None else "block" for spec in self.specs)


def layout_of(shape: tuple[int, ...], distribution: Any, grid: Any, nprocs: int) -> tuple[Layout, Any]:
    """The Layout of a `shape` array under `distribution` and `grid` on
    `nprocs` ranks, and the distribution as the DistArray reports it: a
    single spec (str, ("block-cyclic", b) or ("block", sizes)) splits axis
    0 only and stays as given, for the one-dimensional API; otherwise one
    spec per axis.  Every axis None is replicated, at any nprocs.
    Raises ValueError naming the values for a spec that is none of the
    distributions, a block size below 1, part sizes that are not one per
    grid coordinate along their axis or do not add up to its length, a
    distribution or grid of the wrong length, a grid entry other than 1 on
    an axis that is not split, or a grid that does not multiply to nprocs
    (a replicated array's is all 1s)."""
    single = single_spec(distribution)
    if single is not None:
        specs: tuple[Spec, ...] = (single,) + (None,) * (len(shape) - 1)
        given: Any = single
    else:
        if not isinstance(distribution, (tuple, list)):
            raise ValueError(f"distribution must be one of {EXPECTED}, or one of those per axis; "
                             f"not {distribution!r}")
        if len(distribution) != len(shape):
            raise ValueError(f"distribution {tuple(distribution)!r} has {len(distribution)} entries, but the "
                             f"array of shape {shape} has {len(shape)} axes: give one per axis")
        specs = tuple(normalize(spec, axis) for axis, spec in enumerate(distribution))
        given = specs
    extents = _grid(grid, specs, shape, nprocs)
    _check_sizes(specs, shape, extents)
    return Layout(shape, specs, extents, nprocs), given


def normalize(spec: Spec, axis: int | None = None) -> Spec:
    """One axis's distribution in canonical form (("block", sizes) with a
    tuple of ints); ValueError (naming the axis, if given) if it is not one."""
    where = "" if axis is None else f"axis {axis}: "
    if spec is None or (isinstance(spec, str) and spec in SPLITTERS):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "block-cyclic":
        b = spec[1]
        if not _is_int(b):
            raise ValueError(f"{where}the block size of {tuple(spec)!r} must be an int, "
                             f"not {type(b).__name__}")
        if b < 1:
            raise ValueError(f"{where}the block size of {tuple(spec)!r} must be at least 1, not {b}")
        return ("block-cyclic", int(b))
    if _is_sized(spec):
        sizes = list(spec[1])
        if not all(_is_int(size) and size >= 0 for size in sizes):
            raise ValueError(f"{where}the part sizes of ('block', {tuple(sizes)!r}) must be non-negative ints")
        return ("block", tuple(int(size) for size in sizes))
    raise ValueError(f"{where}distribution must be {EXPECTED}, not {spec!r}")


def is_block(spec: Spec) -> bool:
    """Whether a (normalized) spec splits into contiguous blocks: "block"
    or ("block", sizes)."""
    return spec == "block" or _is_sized(spec)


def _is_sized(spec: Spec) -> bool:
    """Whether spec is ("block", sizes): sizes hold no spec (a str, None or
    a tuple), so that ("block", ("block-cyclic", 2)) stays two axes' specs."""
    return (isinstance(spec, (tuple, list)) and len(spec) == 2 and isinstance(spec[0], str) and spec[0] == "block"
            and isinstance(spec[1], (tuple, list, np.ndarray))
            and not any(size is None or isinstance(size, (str, tuple, list)) for size in spec[1]))


def _is_int(value: Any) -> bool:
    return isinstance(value, (int, np.integer)) and not isinstance(value, bool)


def single_spec(distribution: Any) -> Spec:
    """`distribution` as one spec for axis 0, if it is one (else None)."""
    if isinstance(distribution, str):
        return normalize(distribution)
    if (isinstance(distribution, (tuple, list)) and len(distribution) == 2
            and distribution[0] == "block-cyclic" and not isinstance(distribution[1], str)):
        return normalize(distribution)
    if _is_sized(distribution):
        return normalize(distribution)
    return None


def _grid(grid: Any, specs: tuple[Spec, ...], shape: tuple[int, ...], nprocs: int) -> tuple[int, ...]:
    if grid is None:
        return _default_grid(specs, nprocs)
    grid = tuple(getattr(grid, "shape", grid))
    if len(grid) != len(shape) or not all(_is_int(g) and g >= 1 for g in grid):
        raise ValueError(f"grid {grid!r} must have one positive int per axis of the array of shape {shape}")
    grid = tuple(int(g) for g in grid)
    for axis, (spec, extent) in enumerate(zip(specs, grid)):
        if spec is None and extent != 1:
            raise ValueError(f"grid {grid} puts {extent} processors on axis {axis}, "
                             f"whose distribution is None: an axis that is not split needs 1")
    if math.prod(grid) != nprocs and any(spec is not None for spec in specs):
        raise ValueError(f"grid {grid} has {math.prod(grid)} processors, but the run has {nprocs} ranks")
    extents: tuple[int, ...] = grid
    return extents


def _default_grid(specs: tuple[Spec, ...], nprocs: int) -> tuple[int, ...]:
    """grid=None: an axis of ("block", sizes) has len(sizes) coordinates;
    the other split axes share the remaining ranks near-squarely (like
    MPI_Dims_create); a replicated array's grid is all 1s."""
    fixed = {axis: len(spec[1]) for axis, spec in enumerate(specs) if _is_sized(spec)}
    free = [axis for axis, spec in enumerate(specs) if spec is not None and axis not in fixed]
    if not fixed and not free:
        return (1,) * len(specs)
    taken = math.prod(fixed.values())
    rest, remainder = divmod(nprocs, taken) if taken else (0, 1)
    if remainder or (not free and rest != 1):
        parts = {axis: specs[axis] for axis in fixed}
        raise ValueError(f"the part sizes {parts} take {taken} grid coordinates, which the other split axes "
                         f"{free} cannot complete to the run's {nprocs} ranks: give sizes whose counts "
                         f"multiply to a divisor of {nprocs}, or a grid")
    extents = dict(fixed)
    extents.update(zip(free, dims_create(rest, len(free)) if free else ()))
    return tuple(extents.get(axis, 1) for axis in range(len(specs)))


def _check_sizes(specs: tuple[Spec, ...], shape: tuple[int, ...], grid: tuple[int, ...]) -> None:
    for axis, (spec, n, extent) in enumerate(zip(specs, shape, grid)):
        if _is_sized(spec):
            sizes = spec[1]
            if len(sizes) != extent:
                raise ValueError(f"axis {axis}: ('block', {sizes}) gives {len(sizes)} part sizes, but the grid "
                                 f"{grid} has {extent} coordinates along that axis: give one per coordinate")
            if sum(sizes) != n:
                raise ValueError(f"axis {axis}: the part sizes {sizes} add up to {sum(sizes)}, not to the "
                                 f"axis's length {n} (shape {shape})")


def _axis(n: int, spec: Spec, procs: int) -> Axis:
    if spec is None or procs == 1:
        return Axis(n, "block", 1, procs)        # on one processor every distribution is one block
    if is_block(spec):
        regular = Axis(n, "block", 1, procs)
        sizes = spec[1] if spec != "block" else None
        return regular if sizes is None or sizes == regular.counts() else Axis(n, "block", 1, procs, sizes)
    return Axis(n, "cyclic", 1 if spec == "cyclic" else spec[1], procs)


def rows_of(n: int, pid: int, nprocs: int, distribution: str) -> range:
    """The global rows rank `pid` holds of n rows split over axis 0 only,
    "block" or "cyclic" (the one-dimensional API)."""
    if distribution == "cyclic":
        return range(pid, n, nprocs)
    if distribution != "block":
        raise ValueError(f"distribution must be 'block' or 'cyclic', not {distribution!r}")
    start, stop = Axis(n, "block", 1, nprocs).span(pid)
    return range(start, stop)


def owner_of(rows: np.ndarray, n: int, nprocs: int, distribution: str) -> np.ndarray:
    """The rank that holds each of `rows` (global indices, an array) of n
    rows split over axis 0 only, "block" or "cyclic"."""
    return Axis(n, "cyclic" if distribution == "cyclic" else "block", 1, nprocs).owner(rows)


def as_index(positions: np.ndarray) -> slice | np.ndarray:
    """`positions` (increasing or not) as a slice when they are an
    arithmetic progression with a positive step, so that numpy takes a view
    rather than copying through fancy indexing."""
    count = len(positions)
    if count == 0:
        return slice(0, 0)
    first = int(positions[0])
    if count == 1:
        return slice(first, first + 1)
    step = int(positions[1]) - first
    if step > 0 and int(positions[-1]) == first + step * (count - 1) and (np.diff(positions) == step).all():
        return slice(first, first + step * (count - 1) + 1, step)
    return positions


def block_of(index: Sequence[slice | np.ndarray]) -> tuple[Any, ...]:
    """A numpy index selecting the Cartesian product of per-axis slices or
    position arrays (np.ix_ semantics, with views where all are slices)."""
    arrays = [i for i in index if not isinstance(i, slice)]
    if len(arrays) <= 1:
        return tuple(index)      # at most one advanced index: numpy keeps its axis in place
    return np.ix_(*[np.arange(i.start, i.stop, i.step) if isinstance(i, slice) else i for i in index])


def describe(indices: np.ndarray) -> str:
    """A short description of a set of global indices, for messages."""
    count = len(indices)
    if count == 0:
        return "none"
    index = as_index(indices)
    if isinstance(index, slice) and index.step == 1:
        return f"{index.start}..{index.stop - 1}"
    if count <= 3:
        return ", ".join(str(int(i)) for i in indices)
    return f"{int(indices[0])}, {int(indices[1])}, ... {int(indices[-1])} ({count} indices)"
