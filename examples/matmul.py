"""A @ B for two n x n matrices on a two-dimensional grid of ranks (SUMMA).

Both matrices are (block, block) DistArrays on a near-square M x N grid;
`A @ B` broadcasts panels of A along the grid rows and panels of B along the
grid columns, one superstep per panel, and each rank adds the product of
its panels to its block of C (see bsp/matmul.py).  The entries are small
integers, so every sum is exact and C is checked, bit for bit, against
numpy's product on one process.

BSP cost on p = M x N ranks, S panels (S = 1 up to about 2048 x 2048 at
p = 4): S supersteps, h = 8n^2 ((N-1) + (M-1)) / p bytes in all
(about 16n^2/sqrt(p)), w = 2n^3/p flops; then a gather of C.

    python examples/matmul.py [n]        (default: 400)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray


def entries(i: np.ndarray, j: np.ndarray, seed: int) -> np.ndarray:
    """Small integers (-3..3, as floats) at (i, j), the same wherever computed."""
    return ((i * 5 + j * 3 + (i * j) % 4 + seed) % 7 - 3).astype(np.float64)


def product(world: bsp.World, n: int) -> tuple[np.ndarray | None, tuple[int, ...]]:
    a = DistArray.from_function(world, (n, n), lambda i, j: entries(i, j, 1), distribution=("block", "block"))
    b = DistArray.from_function(world, (n, n), lambda i, j: entries(i, j, 2), distribution=("block", "block"))
    c = a @ b
    return c.gather(root=0), c.grid


def serial(n: int) -> np.ndarray:
    i, j = np.arange(n)[:, None], np.arange(n)[None, :]
    return entries(i, j, 1) @ entries(i, j, 2)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    results = bsp.run(product, n)
    (c, grid), expected = results[0], serial(n)
    print(f"A @ B, {n} x {n}, {len(results)} ranks on a {grid[0]} x {grid[1]} grid")
    print(f"trace of C: {np.trace(c):.1f}, sum of C: {c.sum():.1f} (serial: {np.trace(expected):.1f}, "
          f"{expected.sum():.1f})")
    ok = np.array_equal(c, expected)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
