"""The halo exchange of a block-distributed array.

A rank's halo of width w along a split axis is the w elements on either
side of its block along that axis: its neighbours' boundary, which a
stencil reads.  `halo` returns the rank's block padded along every split
axis (distribution not None) by its widths, corners included; axes that
are not split are whole on every rank and get no padding.  Beyond the
global edges the padding wraps around (`periodic`) or holds `fill`.

Only the block distribution has neighbours in this sense: under a cyclic or
block-cyclic distribution the elements next to a rank's elements belong to
other ranks, so the padded block would not be a stencil's neighbourhood.
`halo` refuses those (redistribute to block first); that is the choice made
where the contract left it open.  Blocks of given sizes, ("block", sizes),
have neighbours like regular ones; a ghost region wider than a neighbour's
part (or next to a part of 0 elements) reaches past it to the ranks beyond,
each ghost still coming straight from the rank that holds it.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from bsp.arrays import superstep_kinds
from bsp.arrays import remap
from bsp.arrays.distribution import Layout, is_block
from bsp.base.argument_checks import check_integer
from bsp.core.engine import Engine


def halo(engine: Engine, layout: Layout, local: np.ndarray, width: int | Sequence[int],
         periodic: bool, fill: Any) -> np.ndarray:
    """`local` (this rank's part under `layout`) padded by `width` ghosts
    per side along every split axis.  One superstep (kind HALO); each ghost
    comes from the rank that holds it, corners from diagonal neighbours
    directly.  Raises ValueError for a split axis that is not "block" or
    ("block", sizes), a width below 0 or above the axis's length, or
    per-axis widths of the wrong length or nonzero on an axis that is not
    split."""
    widths = _widths(layout, width)
    split = layout.split_axes()
    for axis in split:
        if not is_block(layout.specs[axis]):
            raise ValueError(f"halo needs the block distribution on every split axis: axis {axis} is "
                             f"{layout.specs[axis]!r}, whose ranks do not hold neighbouring elements; "
                             f"redistribute to 'block' first")

    def wanted(pid: int) -> list[np.ndarray]:
        coords = layout.coords_of(pid)
        return [_ghosted(layout, axis, coords[axis], widths[axis], periodic) if axis in split
                else layout.held(axis, 0) for axis in range(layout.ndim)]

    return remap.fetch(engine, superstep_kinds.HALO, layout, local, wanted, fill=fill)


def _ghosted(layout: Layout, axis: int, coord: int, width: int, periodic: bool) -> np.ndarray:
    """The global indices of a block and its ghosts along `axis`; -1 beyond
    an edge when not periodic."""
    n = layout.shape[axis]
    start, stop = layout.axes[axis].span(coord)
    indices = np.arange(start - width, stop + width, dtype=np.int64)
    if periodic:
        return indices % max(n, 1)
    return np.where((indices >= 0) & (indices < n), indices, -1)


def _widths(layout: Layout, width: Any) -> tuple[int, ...]:
    """One width per axis (0 where the axis is not split), checked."""
    split = layout.split_axes()
    if isinstance(width, (tuple, list)):
        if len(width) != layout.ndim:
            raise ValueError(f"halo widths {tuple(width)} must give one width per axis of the array of "
                             f"shape {layout.shape}")
        widths = tuple(_count(w) for w in width)
        for axis, w in enumerate(widths):
            if w and axis not in split:
                raise ValueError(f"halo width {w} on axis {axis}, which is not split (distribution None): "
                                 f"every rank holds it whole, so its width must be 0")
    else:
        w = _count(width)
        widths = tuple(w if axis in split else 0 for axis in range(layout.ndim))
    for axis, (w, n) in enumerate(zip(widths, layout.shape)):
        if not 0 <= w <= n:
            what = "the number of rows" if axis == 0 else f"the length of axis {axis}"
            raise ValueError(f"halo width must be between 0 and {what}, {n}; got {w}")
    return widths


def _count(width: Any) -> int:
    return check_integer(width, "a halo width must be an int")
