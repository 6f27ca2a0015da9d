"""The heat equation on a square plate, rows split over the ranks.

Explicit finite differences: every step, each rank takes one row from each
neighbour (a halo exchange, one superstep) and updates its rows with the
five-point stencil; the edges of the plate are held at zero.  The result is
checked against the same computation on one numpy array.

BSP cost per step: 1 superstep, h = 2 rows of m floats, w = 5 flops per
point of the rank's n/p rows.

    python examples/stencil.py [n] [steps]        (defaults: 200 x 200, 300 steps)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray

RATE = 0.2      # dt / dx^2: stable below 0.25


def initial(rows: np.ndarray, n: int) -> np.ndarray:
    """A warm spot off the centre of a cold plate: rows of the n x n grid."""
    x = rows[:, None] / n
    y = np.arange(n)[None, :] / n
    return np.exp(-40 * ((x - 0.4) ** 2 + (y - 0.55) ** 2))


def step(u: np.ndarray, above: np.ndarray, below: np.ndarray) -> np.ndarray:
    """One explicit step for rows `u`, given the row above and below them."""
    padded = np.pad(np.concatenate([above, u, below]), ((0, 0), (1, 1)))     # zero edges left and right
    middle = padded[1:-1, 1:-1]
    return middle + RATE * (padded[:-2, 1:-1] + padded[2:, 1:-1] + padded[1:-1, :-2] + padded[1:-1, 2:] - 4 * middle)


def heat(world: bsp.World, n: int, steps: int) -> np.ndarray | None:
    u = DistArray.from_function(world, (n, n), lambda rows: initial(rows, n))
    for _ in range(steps):
        extended = u.halo(1, fill=0.0)          # zero rows beyond the top and bottom edges
        u.local = step(u.local, extended[:1], extended[-1:])
    return u.gather(root=0)


def serial(n: int, steps: int) -> np.ndarray:
    u = initial(np.arange(n), n)
    zero = np.zeros((1, n))
    for _ in range(steps):
        u = step(u, zero, zero)
    return u


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    results = bsp.run(heat, n, steps)
    plate, expected = results[0], serial(n, steps)
    print(f"heat equation, {n} x {n} grid, {steps} steps, {len(results)} ranks")
    print(f"heat left on the plate: {plate.sum():.10f} (serial: {expected.sum():.10f})")
    ok = np.array_equal(plate, expected)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
