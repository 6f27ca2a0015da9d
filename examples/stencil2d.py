"""The heat equation on a square plate split over a two-dimensional grid
of ranks.

Explicit finite differences on a (block, block) DistArray: every step, each
rank takes a one-cell border from its neighbours with `halo` (one superstep;
ghost rows and columns, corners included, although the five-point stencil
reads no corner) and updates its block; beyond the plate's edges the halo
holds zeros (`fill`), which keeps the edges cold.  The result is checked,
bit for bit, against the same computation on one numpy array.

BSP cost per step on an M x N grid: 1 superstep, h = 8 * (2n/M + 2n/N + 4)
bytes (the border of a block), w = 6 flops per point of the rank's n^2/p.

    python examples/stencil2d.py [n] [steps]        (defaults: 200 x 200, 300 steps)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray

RATE = 0.2      # dt / dx^2: stable below 0.25


def initial(i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """A warm spot off the centre of a cold plate, at points (i, j) of the n x n grid."""
    return np.exp(-40 * ((i / n - 0.4) ** 2 + (j / n - 0.55) ** 2))


def step(padded: np.ndarray) -> np.ndarray:
    """One explicit step of a block, given it with a border of one cell."""
    middle = padded[1:-1, 1:-1]
    return middle + RATE * (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * middle)


def heat(world: bsp.World, n: int, steps: int) -> tuple[np.ndarray | None, tuple[int, ...]]:
    u = DistArray.from_function(world, (n, n), lambda i, j: initial(i, j, n), distribution=("block", "block"))
    for _ in range(steps):
        u.local = step(u.halo(1, fill=0.0))
    return u.gather(root=0), u.grid


def serial(n: int, steps: int) -> np.ndarray:
    u = initial(np.arange(n)[:, None], np.arange(n)[None, :], n)
    for _ in range(steps):
        u = step(np.pad(u, 1))
    return u


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    results = bsp.run(heat, n, steps)
    (plate, grid), expected = results[0], serial(n, steps)
    print(f"heat equation, {n} x {n} grid, {steps} steps, {len(results)} ranks on a {grid[0]} x {grid[1]} grid")
    print(f"heat left on the plate: {plate.sum():.10f} (serial: {expected.sum():.10f})")
    ok = np.array_equal(plate, expected)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
