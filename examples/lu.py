"""LU decomposition with partial pivoting of a random n x n matrix whose rows
are distributed cyclically over the ranks (a DistArray, row i on rank i % p,
so that every rank keeps a share of the rows that are still active as the
elimination moves down).

Stage k needs the largest |a[i, k]| over the rows i >= k, and that row,
the pivot row, on every rank.  Both fit in one superstep: every rank offers
its best candidate row, and the rank holding row k adds that row; after
the allgather every rank picks the same pivot, the ranks holding rows k and
r swap them locally (each has the other's copy), and every rank updates its
own rows below k with the pivot row.  The factors, L (unit lower, below the
diagonal) and U, overwrite the matrix as in LAPACK's getrf; every rank also
knows det A, from the pivots.  Checked against the same elimination on one
numpy array, and det A against numpy.linalg.slogdet.

BSP cost: n supersteps (one allgather per stage, h = 16n(p-1) bytes: p
candidate rows and row k), and one gather; w = 2n^3/(3p) flops in all.
BSPedupack's bsplu, on a 2D cyclic distribution of sqrt(p) x sqrt(p) ranks,
sends less (h = O(n/sqrt(p)) a stage) in more supersteps.

    python examples/lu.py [n]       (default: n = 400)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray


def matrix_rows(rows: np.ndarray, n: int, seed: int = 11) -> np.ndarray:
    """Rows of a random matrix, each from its own seeded generator."""
    return np.array([np.random.default_rng((seed, row)).random(n) - 0.5 for row in rows.tolist()]).reshape(-1, n)


def lu(world: bsp.World, n: int) -> tuple[np.ndarray | None, list[int], float, float, int]:
    a = DistArray.from_function(world, (n, n), lambda rows: matrix_rows(rows, n), distribution="cyclic")
    rows = a.rows
    pivots, sign, log_det = [], 1.0, 0.0
    for k in range(n):
        active = np.searchsorted(rows, k)          # local rows from here on are rows >= k
        offer = None
        if active < len(rows):
            i = active + int(np.argmax(np.abs(a.local[active:, k])))
            offer = (abs(a.local[i, k]), -rows[i], a.local[i].copy())    # the first row wins a tie
        row_k = a.local[active].copy() if k % world.nprocs == world.pid else None
        everything = world.allgather((offer, row_k))
        _, minus_r, pivot_row = max((offer for offer, _ in everything if offer), key=lambda offer: offer[:2])
        r, row_k = -minus_r, next(row for _, row in everything if row is not None)
        if r % world.nprocs == world.pid:
            a.local[rows == r] = row_k              # row k moves to where the pivot row was...
        if k % world.nprocs == world.pid:
            a.local[active] = pivot_row             # ...and the pivot row to row k
        below = a.local[np.searchsorted(rows, k + 1):]
        below[:, k] /= pivot_row[k]
        below[:, k + 1:] -= np.outer(below[:, k], pivot_row[k + 1:])
        pivots.append(r)
        sign *= np.sign(pivot_row[k]) * (-1 if r != k else 1)
        log_det += np.log(abs(pivot_row[k]))
    return a.gather(root=0), pivots, sign, log_det, world.superstep


def serial(matrix: np.ndarray) -> tuple[np.ndarray, list[int]]:
    a, pivots = matrix.copy(), []
    for k in range(len(a)):
        r = k + int(np.argmax(np.abs(a[k:, k])))
        a[[k, r]] = a[[r, k]]
        a[k + 1:, k] /= a[k, k]
        a[k + 1:, k + 1:] -= np.outer(a[k + 1:, k], a[k, k + 1:])
        pivots.append(r)
    return a, pivots


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 400
    results = bsp.run(lu, n)
    factors, pivots, sign, log_det, supersteps = results[0]
    matrix = matrix_rows(np.arange(n), n)
    permuted = matrix.copy()
    for k, r in enumerate(pivots):
        permuted[[k, r]] = permuted[[r, k]]
    lower, upper = np.tril(factors, -1) + np.eye(n), np.triu(factors)
    residual = np.abs(permuted - lower @ upper).max()
    print(f"LU decomposition with partial pivoting of a {n} x {n} matrix, rows cyclic over {len(results)} ranks, "
          f"{supersteps} supersteps")
    print(f"max |PA - LU| = {residual:.1e}; log |det A| = {log_det:.10f}, its sign {sign:+.0f}")
    expected, expected_pivots = serial(matrix)
    ok = np.array_equal(factors, expected) and pivots == expected_pivots
    ok = ok and np.allclose([sign, log_det], np.linalg.slogdet(matrix), rtol=1e-9)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
