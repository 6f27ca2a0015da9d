"""BSPedupack's LU decomposition with partial pivoting (bsplu) on an M x N
processor grid, with row and column group collectives where bsplu writes
its broadcasts by hand.

The n x n matrix is distributed 2-D cyclically: a[i, j] lives on the rank
at grid coordinates (i % M, j % N), which holds the rows s, s+M, ... and the
columns t, t+N, ... of the matrix as one numpy array.  Stage k of the
elimination takes three supersteps:

1. pivot search, `grid.column.allgather`: in processor column k % N every
   rank offers its largest |a[i, k]| over its rows i >= k (and a[k, k], if
   it holds row k); every rank of that column then picks the same pivot row
   r and computes the multipliers of its rows below k, as they will be once
   rows k and r are swapped.
2. `grid.row.broadcast` from processor column k % N: r, and each rank's
   multipliers (column k of L), to the whole processor row.
3. `grid.column.broadcast` from processor row r % M: the part of row r
   right of column k, the new row k of U.  In the same superstep the ranks
   holding rows k and r send each other what the swap needs of them with
   `world.send`.  Every rank then swaps and updates its part of the
   trailing matrix, a[i, j] -= l[i] * u[j].

bsplu (BSPedupack, Bisseling's "Parallel Scientific Computing") takes five
supersteps a stage: the local pivot search put to the processor column,
the global pivot and r put to the processor row, the row swap, and the two
phases of its two-phase broadcasts of column k and row k.  Here the pivot
search and the choice of the pivot are one collective, r travels with the
multipliers, and the swap with row k of U.

BSP cost: 3n + 1 supersteps (the last gathers the factors on rank 0).
Stage k: h = 8(n-k)(N-1)/M bytes for the row broadcast, 8(n-k)(M-1)/N
for the column broadcast, plus at most 8n/N for the swap; w = 2(n-k)^2/p
flops.  In all: w = 2n^3/(3p), and h summed over the stages about
4n^2 ((N-1)/M + (M-1)/N) + 8n^2/N bytes.  The broadcasts are one-phase
(the root sends every copy); bsplu's two-phase broadcasts send less from the
root, 2 x 8(n-k)/M, in two supersteps.

The factors (L unit lower triangular below the diagonal, U on and above it,
as LAPACK's getrf stores them) and the pivots are checked against the same
elimination done serially on one numpy array, which they equal bitwise, and
P A = L U is checked by reconstruction.

    python examples/lu2d.py [n [M]]     (default: n = 400; M x N = the most
                                         square grid of the ranks, M >= N)
"""

import sys

import numpy as np

import bsp
from bsp.objects.grid import dims_create
from lu import matrix_rows, serial       # the matrix and the serial elimination of examples/lu.py


def lu2d(world: bsp.World, n: int, m: int | None = None) -> tuple[np.ndarray | None, list[int], tuple, int]:
    """The factors (on rank 0), the pivots, the grid shape and the number of
    supersteps, on an m x (p/m) grid (m None: the most square grid)."""
    grid = world.grid(dims_create(world.nprocs, 2) if m is None else (m, world.nprocs // max(m, 1)))
    (m, nn), (s, t) = grid.shape, grid.coords
    rows, cols = np.arange(s, n, m), np.arange(t, n, nn)           # this rank's global rows and columns
    a = matrix_rows(rows, n)[:, cols].copy()
    pivots = []
    for k in range(n):
        r, pivot, multipliers = choose_pivot(grid, a, rows, cols, k)
        r, multipliers = grid.row.broadcast((r, multipliers) if k % nn == t else None, root=k % nn)
        swap_and_update(world, grid, a, rows, cols, k, r, multipliers)
        pivots.append(r)
    blocks = world.gather(a, root=0)
    if blocks is None:
        return None, pivots, grid.shape, world.superstep
    factors = np.empty((n, n))
    for pid, block in enumerate(blocks):
        u, v = grid.coords_of(pid)
        factors[u::m, v::nn] = block
    return factors, pivots, grid.shape, world.superstep


def choose_pivot(grid: bsp.Grid, a: np.ndarray, rows: np.ndarray, cols: np.ndarray, k: int):
    """Superstep 1: the pivot row r, the pivot and this rank's multipliers
    (for its rows below k, once rows k and r are swapped), on the ranks of
    processor column k % N; (None, None, None) elsewhere."""
    mine = grid.coords[1] == k % grid.shape[1]
    offer = a_kk = None
    if mine:
        column = a[:, np.searchsorted(cols, k)]
        active = np.searchsorted(rows, k)
        if active < len(rows):
            i = active + int(np.argmax(np.abs(column[active:])))    # the first (smallest) row wins a tie
            offer = (abs(column[i]), -int(rows[i]), column[i])
        if grid.coords[0] == k % grid.shape[0]:
            a_kk = column[active]
    everything = grid.column.allgather((offer, a_kk))
    if not mine:
        return None, None, None
    _, minus_r, pivot = max((offer for offer, _ in everything if offer is not None), key=lambda o: o[:2])
    if pivot == 0:
        raise ZeroDivisionError(f"the matrix is singular: column {k} has no nonzero pivot")
    r, a_kk = -minus_r, next(value for _, value in everything if value is not None)
    below = np.searchsorted(rows, k + 1)
    column = a[below:, np.searchsorted(cols, k)].copy()
    column[rows[below:] == r] = a_kk                                 # row k moves to row r
    return r, pivot, column / pivot


def swap_and_update(world: bsp.World, grid: bsp.Grid, a: np.ndarray, rows: np.ndarray, cols: np.ndarray,
                    k: int, r: int, multipliers: np.ndarray) -> None:
    """Superstep 3: swap rows k and r, put the multipliers in column k, and
    update the trailing matrix with row k of U from the column broadcast."""
    m, s = grid.shape[0], grid.coords[0]
    right = np.searchsorted(cols, k + 1)                      # local columns > k
    holds_k, holds_r = s == k % m, s == r % m
    local_k, local_r = np.searchsorted(rows, k), np.searchsorted(rows, r)
    if r != k and holds_k and not holds_r:                    # old row k goes whole to row r's rank
        world.send(a[local_k].copy(), grid.rank_of((r % m, grid.coords[1])))
    if r != k and holds_r and not holds_k:                    # row r left of k+1 to row k's rank
        world.send(a[local_r, :right].copy(), grid.rank_of((k % m, grid.coords[1])))
    u = grid.column.broadcast(a[local_r, right:].copy() if holds_r else None, root=r % m)
    if r != k:
        arrived = [obj for _, obj in world.messages()]
        old_k = a[local_k].copy() if holds_k else None
        if holds_k:
            a[local_k, :right] = a[local_r, :right] if holds_r else arrived[0]
            a[local_k, right:] = u
        if holds_r:
            a[local_r] = old_k if holds_k else arrived[0]
    below = np.searchsorted(rows, k + 1)
    if grid.coords[1] == k % grid.shape[1]:
        a[below:, right - 1] = multipliers
    a[below:, right:] -= np.outer(multipliers, u)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    if n < 1:
        raise SystemExit(f"n must be at least 1, not {n}")
    m = int(sys.argv[2]) if len(sys.argv) > 2 else None
    factors, pivots, shape, supersteps = bsp.run(lu2d, n, m)[0]
    matrix = matrix_rows(np.arange(n), n)
    permuted = matrix.copy()
    for k, r in enumerate(pivots):
        permuted[[k, r]] = permuted[[r, k]]
    lower, upper = np.tril(factors, -1) + np.eye(n), np.triu(factors)
    residual = np.abs(permuted - lower @ upper).max() if n else 0.0
    print(f"LU decomposition with partial pivoting of a {n} x {n} matrix, 2-D cyclic over a "
          f"{shape[0]} x {shape[1]} grid of ranks, {supersteps} supersteps")
    print(f"max |PA - LU| = {residual:.1e}")
    expected, expected_pivots = serial(matrix)
    ok = np.array_equal(factors, expected) and pivots == expected_pivots and residual < 1e-9
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
