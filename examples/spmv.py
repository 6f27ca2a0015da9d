"""Sparse matrix-vector multiplication, repeated as in the power iteration:
x <- A x / |A x| converges to the eigenvector of A's largest eigenvalue,
and |A x| to that eigenvalue.

A is an n x n sparse matrix with positive entries: a band around the
diagonal, and in one row of eight a few long links.  Each rank holds a
block of its rows in CSR form (row pointers, column indices, values) and
the same block of x and y = A x (DistArrays).  Before the first product,
each rank tells every other which of its x values it needs (one
superstep); after that, each product starts with the fan-out: every rank
sends the others exactly the x values they asked for.  The multiplication
is then local, and the norm is a reduction.  (BSPedupack's bspmv also has a
fan-in, for matrices whose rows are split over several ranks; whole rows
need none.)  Checked against the same iteration on the whole matrix.

BSP cost: 1 superstep to set up, then 2 per iteration: the fan-out, h = 8
bytes per x value a rank sends or receives (4 for the band, at most 3n/8p
for the long links), and the norm, an allreduce with h = 8(p-1);
w = 2 nnz/p flops for nnz nonzeros.

    python examples/spmv.py [n] [iterations]     (defaults: n = 200000, 50 iterations)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray
from bsp.arrays.distarray import owner_of

BAND = 2                                        # nonzeros at distance up to BAND from the diagonal
LINKS = np.array([7919, 104729, 1299709])       # long links: row i reaches i * LINK + 17 (mod n)


def csr_rows(rows: np.ndarray, n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows `rows` of A in CSR form: row pointers, column indices, values.
    Row i holds its band, and one row in eight also the long links."""
    band = rows[:, None] + np.arange(-BAND, BAND + 1)
    columns = np.concatenate([band, rows[:, None] * LINKS + 17], axis=1) % n
    keep = np.arange(columns.shape[1]) < np.where(rows[:, None] % 8 == 0, columns.shape[1], 2 * BAND + 1)
    pointers = np.concatenate([[0], np.cumsum(keep.sum(axis=1))])
    columns = columns[keep]
    return pointers, columns, 1.0 / (1 + columns % 7)


def multiply(pointers: np.ndarray, values: np.ndarray, x_at_nonzeros: np.ndarray) -> np.ndarray:
    """y = A x for CSR rows, given the x value of each nonzero's column.
    (reduceat would misread an empty row; every row here has its band.)"""
    return np.add.reduceat(values * x_at_nonzeros, pointers[:-1])


def power_iteration(world: bsp.World, n: int, iterations: int) -> tuple[np.ndarray | None, float, int]:
    p = world.nprocs
    x = DistArray.from_function(world, n, lambda rows: np.ones(len(rows)))
    pointers, columns, values = csr_rows(x.rows, n)
    # The x values this rank needs, sorted, fall into one run per owner, so
    # what the owners send back, in pid order, lines up with `needed`.
    needed = np.unique(columns)
    asked = world.alltoall(np.split(needed, np.searchsorted(owner_of(needed, n, p, "block"), np.arange(1, p))))
    at = np.searchsorted(needed, columns)        # where each nonzero's x value will be
    norm = 0.0
    for _ in range(iterations):
        fetched = np.concatenate(world.alltoall([x.local[np.searchsorted(x.rows, wanted)] for wanted in asked]))
        y = DistArray(world, (n,), multiply(pointers, values, fetched[at]))
        norm = np.sqrt((y * y).sum())
        x = y / norm
    received = len(needed) - len(asked[world.pid])
    return x.gather(root=0), norm, world.allreduce(received)


def serial(n: int, iterations: int) -> tuple[np.ndarray, float]:
    pointers, columns, values = csr_rows(np.arange(n), n)
    x, norm = np.ones(n), 0.0
    for _ in range(iterations):
        y = multiply(pointers, values, x[columns])
        norm = np.sqrt((y * y).sum())
        x = y / norm
    return x, norm


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 50
    results = bsp.run(power_iteration, n, iterations)
    x, norm, moved = results[0]
    expected_x, expected_norm = serial(n, iterations)
    print(f"power iteration on a {n} x {n} sparse matrix, {iterations} products on {len(results)} ranks; "
          f"each fan-out moves {moved} values")
    print(f"largest eigenvalue: {norm:.10f}")
    ok = np.allclose(x, expected_x, rtol=1e-10, atol=0) and np.isclose(norm, expected_norm, rtol=1e-12)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
