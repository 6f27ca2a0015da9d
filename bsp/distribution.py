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
- `None`: the axis is not split (its grid extent is 1).

Every map is vectorized: owners and local positions of whole index arrays.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .grid import dims_create

Spec = Any      # "block", "cyclic", ("block-cyclic", b) or None
SPLITTERS = ("block", "cyclic")
EXPECTED = "'block', 'cyclic', ('block-cyclic', b) or None"


@dataclass(frozen=True)
class Axis:
    """The placement of one axis of n elements over `procs` grid
    coordinates: kind "block" or "cyclic" (with block size b; plain cyclic
    is b = 1).  An axis that is not split is one block on one coordinate."""

    n: int
    kind: str
    b: int
    procs: int

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
        base, extra = divmod(self.n, self.procs)
        start = coord * base + min(coord, extra)
        return start, start + base + (coord < extra)

    def owner(self, index: np.ndarray) -> np.ndarray:
        """The grid coordinate along this axis that holds each global index."""
        if self.kind == "cyclic":
            return (index // self.b) % self.procs
        base, extra = divmod(self.n, self.procs)
        boundary = extra * (base + 1)           # indices below belong to the larger blocks
        if base == 0:
            return index
        return np.where(index < boundary, index // (base + 1), extra + (index - boundary) // base)

    def position(self, index: np.ndarray) -> np.ndarray:
        """Where each global index sits in its owner's local part."""
        if self.kind == "cyclic":
            positions: np.ndarray = (index // (self.b * self.procs)) * self.b + index % self.b
            return positions
        base, extra = divmod(self.n, self.procs)
        owner = self.owner(index)
        positions = index - (owner * base + np.minimum(owner, extra))
        return positions


class Layout:
    """A global `shape` over a processor `grid`, one distribution spec per
    axis (normalized: see `normalize`).  Layouts compare equal when every
    rank holds the same elements at the same places under both."""

    def __init__(self, shape: tuple[int, ...], specs: tuple[Spec, ...], grid: tuple[int, ...]):
        self.shape, self.specs, self.grid = shape, specs, grid
        self.ndim = len(shape)
        self.nprocs = math.prod(grid)
        self.axes = tuple(_axis(n, spec, procs) for n, spec, procs in zip(shape, specs, grid))
        self._held: dict[tuple[int, int], np.ndarray] = {}

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Layout) and self.axes == other.axes

    def __hash__(self) -> int:
        return hash(self.axes)

    def __repr__(self) -> str:
        return f"Layout(shape={self.shape}, distribution={self.specs}, grid={self.grid})"

    def coords_of(self, pid: int) -> tuple[int, ...]:
        """Grid coordinates of rank `pid`, row-major."""
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

    def local_shape(self, pid: int) -> tuple[int, ...]:
        return tuple(len(held) for held in self.indices(pid))

    def split_axes(self) -> list[int]:
        """The axes whose distribution is not None."""
        return [axis for axis, spec in enumerate(self.specs) if spec is not None]


def layout_of(shape: tuple[int, ...], distribution: Any, grid: Any, nprocs: int) -> tuple[Layout, Any]:
    """The Layout of a `shape` array under `distribution` and `grid` on
    `nprocs` ranks, and the distribution as the DistArray reports it: a
    single spec (str, or ("block-cyclic", b)) splits axis 0 only and stays
    as given, for the one-dimensional API; otherwise one spec per axis.
    Raises ValueError naming the values for a spec that is none of the
    distributions, a block size below 1, a distribution or grid of the
    wrong length, a grid entry other than 1 on an axis that is not split,
    or a grid that does not multiply to nprocs."""
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
    return Layout(shape, specs, _grid(grid, specs, shape, nprocs)), given


def normalize(spec: Spec, axis: int | None = None) -> Spec:
    """One axis's distribution in canonical form; ValueError (naming the
    axis, if given) if it is not one."""
    where = "" if axis is None else f"axis {axis}: "
    if spec is None or (isinstance(spec, str) and spec in SPLITTERS):
        return spec
    if isinstance(spec, (tuple, list)) and len(spec) == 2 and spec[0] == "block-cyclic":
        b = spec[1]
        if isinstance(b, bool) or not isinstance(b, (int, np.integer)):
            raise ValueError(f"{where}the block size of {tuple(spec)!r} must be an int, "
                             f"not {type(b).__name__}")
        if b < 1:
            raise ValueError(f"{where}the block size of {tuple(spec)!r} must be at least 1, not {b}")
        return ("block-cyclic", int(b))
    raise ValueError(f"{where}distribution must be {EXPECTED}, not {spec!r}")


def single_spec(distribution: Any) -> Spec:
    """`distribution` as one spec for axis 0, if it is one (else None)."""
    if isinstance(distribution, str):
        return normalize(distribution)
    if (isinstance(distribution, (tuple, list)) and len(distribution) == 2
            and distribution[0] == "block-cyclic" and not isinstance(distribution[1], str)):
        return normalize(distribution)
    return None


def _grid(grid: Any, specs: tuple[Spec, ...], shape: tuple[int, ...], nprocs: int) -> tuple[int, ...]:
    split = [axis for axis, spec in enumerate(specs) if spec is not None]
    if grid is None:
        if not split:
            if nprocs == 1:
                return (1,) * len(shape)
            raise ValueError(f"distribution {specs!r} splits no axis, but there are {nprocs} ranks: "
                             f"split at least one axis")
        dims = iter(dims_create(nprocs, len(split)))
        return tuple(next(dims) if spec is not None else 1 for spec in specs)
    grid = tuple(getattr(grid, "shape", grid))
    if len(grid) != len(shape) or not all(isinstance(g, (int, np.integer)) and g >= 1 for g in grid):
        raise ValueError(f"grid {grid!r} must have one positive int per axis of the array of shape {shape}")
    grid = tuple(int(g) for g in grid)
    for axis, (spec, extent) in enumerate(zip(specs, grid)):
        if spec is None and extent != 1:
            raise ValueError(f"grid {grid} puts {extent} processors on axis {axis}, "
                             f"whose distribution is None: an axis that is not split needs 1")
    if math.prod(grid) != nprocs:
        raise ValueError(f"grid {grid} has {math.prod(grid)} processors, but the run has {nprocs} ranks")
    extents: tuple[int, ...] = grid
    return extents


def _axis(n: int, spec: Spec, procs: int) -> Axis:
    if spec is None or spec == "block" or procs == 1:
        return Axis(n, "block", 1, procs)        # on one processor every distribution is one block
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
