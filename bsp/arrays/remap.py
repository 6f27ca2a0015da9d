"""Moving a distributed array's elements between layouts, in one superstep.

One primitive, `fetch`, serves redistribution, transposition and the halo
exchange: every rank names the block of the global array it wants (one
list of global indices per axis, so a Cartesian product), and every element
of it travels once, from the rank that holds it, in one superstep.  Every
rank can work out what every other rank wants (it is arithmetic on the
layouts), so nobody asks: each rank sends each other rank exactly the
elements it holds of that rank's block, as one contiguous array, and copies
its own share locally without going through the transport.  h is then the
largest number of bytes a rank must send or receive, plus a message header
(about a hundred bytes) per pair of ranks that exchange anything.

Index sets that are arithmetic progressions become slices, so block-to-block
and block-to-cyclic moves copy through numpy views rather than fancy
indexing.
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np

from bsp.objects import collectives
from bsp.arrays.distribution import Layout, as_index, block_of
from bsp.core.engine import Engine

# pid -> per axis of the result, the global indices wanted there (-1: none, to be filled)
Wanted = Callable[[int], Sequence[np.ndarray]]


def fetch(engine: Engine, kind: int, layout: Layout, local: np.ndarray, wanted: Wanted,
          axes: Sequence[int] | None = None, fill: Any = 0) -> np.ndarray:
    """This rank's `wanted(pid)` block of the global array that `local`
    (this rank's part under `layout`) belongs to, with its axes permuted by
    `axes` (result axis a indexes source axis axes[a]; default: none) and
    `fill` where a wanted index is -1.  Collective: every rank calls it with
    the same layout and `wanted`, which must give every rank's block.
    One superstep ending as `kind`; each element of a block travels once
    from its owner, and only to another rank.  From a replicated layout
    every rank holds every element, so nothing travels (each copies its
    block locally); to a replicated one, every rank wants the whole array
    (an allgather: h = the array, less this rank's part)."""
    me, nprocs = engine.pid, engine.nprocs
    axes = tuple(range(layout.ndim)) if axes is None else tuple(axes)
    source = local.transpose(axes)
    mine = layout.coords_of(me)
    posts = []
    for dest in range(nprocs):
        if dest != me and not layout.replicated:
            piece = _piece(layout, axes, wanted(dest), mine)
            if piece is not None:
                posts.append(((dest,), np.ascontiguousarray(source[block_of(piece[1])])))
    arrived = collectives.superstep(engine, kind, posts)
    want = wanted(me)
    shape = tuple(len(indices) for indices in want)
    if any((indices < 0).any() for indices in want):
        block = np.full(shape, fill, local.dtype)
    else:
        block = np.empty(shape, local.dtype)
    own = _piece(layout, axes, want, mine)
    if own is not None:
        block[block_of(own[0])] = source[block_of(own[1])]
    for sender, values in arrived:
        piece = _piece(layout, axes, want, layout.coords_of(sender))
        assert piece is not None            # a rank sends only a part that is not empty
        block[block_of(piece[0])] = values
    return block


def _piece(layout: Layout, axes: tuple[int, ...], want: Sequence[np.ndarray], coords: tuple[int, ...]
           ) -> tuple[list[slice | np.ndarray], list[slice | np.ndarray]] | None:
    """Of the block `want`, the part held at grid `coords`: per result axis,
    its positions in the block and in the holder's local part (slices where
    they can be); None if that part is empty."""
    places: list[slice | np.ndarray] = []
    positions: list[slice | np.ndarray] = []
    for axis, indices in zip(axes, want):
        distribution = layout.axes[axis]
        valid = indices >= 0
        held = valid & (distribution.owner(np.where(valid, indices, 0)) == coords[axis])
        if not held.any():
            return None
        places.append(as_index(np.flatnonzero(held)))
        positions.append(as_index(distribution.position(indices[held])))
    return places, positions

