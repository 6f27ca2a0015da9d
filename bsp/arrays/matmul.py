"""The distributed matrix product `A @ B`: SUMMA (van de Geijn and Watts'
Scalable Universal Matrix Multiplication Algorithm).

A (m x k) and B (k x n) lie on the same M x N processor grid, under any
distributions.  Rank (s, t) holds A's rows I_s and columns K_t, B's rows
K'_s and columns J_t, and computes C's block I_s x J_t (C gets A's row
distribution and B's column distribution, on the same grid).  The k axis is
cut into S contiguous panels; in each panel's superstep every rank sends its
columns of A's panel to the other ranks of its grid row and its rows of B's
panel to the other ranks of its grid column (both broadcasts share the one
superstep), then adds the product of the panels it now holds, rows I_s of
A's panel times columns J_t of B's, to its block of C.

BSP cost, for s-byte elements and S panels on p = M*N ranks:

    S supersteps;  h = s * k * ((N-1) m + (M-1) n) / p  in all, k/S of it per superstep;
    w = 2 m n k / p flops in all;
    T = 2mnk / (p r) + g * s * k * ((N-1) m + (M-1) n) / p + S * l

For square matrices on a square grid h is about 2 s n^2 / sqrt(p) in all.
S defaults to the fewest panels whose received parts stay within
PANEL_BUDGET bytes per rank (one superstep up to about 2048 x 2048 float64
at p = 4); `A.matmul(B, panels=S)` sets it.
"""

from __future__ import annotations

import math
import operator
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np

from bsp.arrays import superstep_kinds
from bsp.objects import collectives
from bsp.arrays.distribution import Layout, as_index, layout_of, single_spec

if TYPE_CHECKING:
    from bsp.world import World

PANEL_BUDGET = 64 << 20     # bytes of A's and B's panels a rank holds at once


class Matrix(Protocol):
    """What SUMMA reads of a two-dimensional DistArray (bsp.arrays.distarray, which
    calls `summa` for A @ B and wraps its result)."""

    world: World
    layout: Layout
    local: np.ndarray
    distribution: Any
    shape: tuple[int, ...]

    @property
    def dtype(self) -> np.dtype: ...
    @property
    def ndim(self) -> int: ...
    @property
    def grid(self) -> tuple[int, ...]: ...
    @property
    def coords(self) -> tuple[int, ...]: ...
    def index(self, axis: int) -> np.ndarray: ...


def summa(a: Matrix, b: Matrix, panels: int | None = None) -> tuple[Layout, Any, np.ndarray]:
    """`a @ b` for two-dimensional DistArrays on the same grid, in `panels`
    supersteps (see the module's docstring for the cost): the product's
    layout, its distribution as given, and this rank's part of it.  Raises
    ValueError naming both shapes when they are not matrices or do not
    match, or both grids when they differ.  (DistArray's A @ B raises
    TypeError unless both are DistArrays, or for numpy keywords such as out=.)"""
    if a.ndim != 2 or b.ndim != 2 or a.shape[1] != b.shape[0]:
        raise ValueError(f"A @ B: shapes {a.shape} and {b.shape} do not match: it needs an m x k and a k x n "
                         f"matrix")
    if a.grid != b.grid:
        raise ValueError(f"A @ B needs both matrices on the same processor grid, not {a.grid} and {b.grid}; "
                         f"redistribute one first")
    (m, k), n = a.shape, b.shape[1]
    dtype = np.result_type(a.dtype, b.dtype)
    count = _panels(panels, a, b, dtype)
    distribution: Any = (a.layout.specs[0], b.layout.specs[1])
    if single_spec(a.distribution) is not None and distribution[1] is None:
        distribution = a.distribution           # rows split only: C keeps the one-dimensional form
    layout, given = layout_of((m, n), distribution, a.grid, a.world.nprocs)
    product = np.zeros(layout.local_shape(a.world.pid), dtype)
    edges = [k * j // count for j in range(count + 1)]
    for lo, hi in zip(edges, edges[1:]):
        a_panel, b_panel = _panel_superstep(a, b, lo, hi)
        product += a_panel @ b_panel
    return layout, given, product


def _panels(panels: int | None, a: Matrix, b: Matrix, dtype: np.dtype) -> int:
    """The number of k-panels: as given, or the fewest within PANEL_BUDGET
    (worked out from global sizes, so that every rank agrees)."""
    (m, k), n = a.shape, b.shape[1]
    most = max(k, 1)
    if panels is None:
        rows, columns = -(-m // a.grid[0]), -(-n // a.grid[1])
        return min(most, max(1, math.ceil((rows + columns) * k * dtype.itemsize / PANEL_BUDGET)))
    if isinstance(panels, bool):
        raise TypeError("panels must be an int, not a bool")
    count = operator.index(panels)
    if not 1 <= count <= most:
        raise ValueError(f"panels must be between 1 and k = {most} (A @ B of {a.shape} and {b.shape}), not {count}")
    return count


def _panel_superstep(a: Matrix, b: Matrix, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
    """One superstep of SUMMA: A's columns lo..hi-1 along grid rows, B's
    rows lo..hi-1 along grid columns; returns this rank's A panel (its
    rows, all the panel's columns) and B panel (all its rows, its columns)."""
    grid, (s, t) = a.layout.grid, a.coords
    row_mates = [a.layout.rank_of((s, u)) for u in range(grid[1]) if u != t]
    column_mates = [a.layout.rank_of((r, t)) for r in range(grid[0]) if r != s]
    mine_a = a.local[:, _within(a.index(1), lo, hi)]
    mine_b = b.local[_within(b.index(0), lo, hi), :]
    posts = []
    if row_mates and mine_a.size:
        posts.append((row_mates, np.ascontiguousarray(mine_a)))
    if column_mates and mine_b.size:
        posts.append((column_mates, np.ascontiguousarray(mine_b)))
    arrived = collectives.superstep(a.world.engine, superstep_kinds.MATMUL, posts)
    pieces_a, pieces_b = {t: mine_a}, {s: mine_b}
    for source, piece in arrived:
        source_row, source_column = a.layout.coords_of(source)
        if source_row == s:
            pieces_a[source_column] = piece
        else:
            pieces_b[source_row] = piece
    a_panel = _assemble(a.layout, 1, pieces_a, lo, hi, (a.local.shape[0], hi - lo), a.dtype)
    b_panel = _assemble(b.layout, 0, pieces_b, lo, hi, (hi - lo, b.local.shape[1]), b.dtype)
    return a_panel, b_panel


def _within(held: np.ndarray, lo: int, hi: int) -> slice:
    """The local positions of the held (increasing) indices in lo..hi-1."""
    return slice(int(np.searchsorted(held, lo)), int(np.searchsorted(held, hi)))


def _assemble(layout: Layout, axis: int, pieces: dict[int, np.ndarray], lo: int, hi: int,
              shape: tuple[int, int], dtype: np.dtype) -> np.ndarray:
    """A panel from the pieces of the grid coordinates along `axis` (the k
    axis of that matrix), each placed where its k indices fall."""
    if len(pieces) == 1 and layout.grid[axis] == 1:
        return next(iter(pieces.values()))            # held whole here: no copy
    panel = np.empty(shape, dtype)        # every k index of the panel is held somewhere
    for coord, piece in pieces.items():
        held = layout.held(axis, coord)
        place = as_index(held[_within(held, lo, hi)] - lo)
        panel[(slice(None), place) if axis == 1 else (place, slice(None))] = piece
    return panel
