"""k-means clustering of n points in 8 dimensions, written as plain numpy
on a DistArray.

The points are a function of their global index (every rank makes its own
rows, and the check makes them all), split over the ranks in blocks of
rows.  Each iteration assigns every point to its nearest center and moves
each center to the mean of its points:

    distances = (centers ** 2).sum(axis=1) - 2 * (x @ centers.T)   # |x - c|^2 - |x|^2, (n, k)
    labels = distances.argmin(axis=1, keepdims=True)               # (n, 1)
    mine = labels == c                                             # the points of cluster c
    centers[c] = held(np.where(mine, x, 0).sum(axis=0)) / mine.sum()

`x @ centers.T` multiplies each rank's rows by the centers, which every
rank holds (1 superstep, in which nothing moves: each rank's rows are
already where the product needs them); the argmin is along an axis that
is not split (no communication); each sum over the points is a reduction
(1 superstep, h = d words per rank).  Checked against the same iterations
in numpy on one process.

BSP cost per iteration: 2k + 1 supersteps, h <= d = 8 words,
w = O(n k d / p).

    python examples/kmeans.py [n] [iterations]      (defaults: 1000000 points, 10 iterations)
"""

import sys

import numpy as np

import bsp
from bsp import DistArray

K, D = 5, 8                 # clusters, dimensions


def points(i: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Point i, coordinate j: around one of K centres, plus a pseudo-random
    offset that is a function of (i, j) alone."""
    noise = np.sin(i * 12.9898 + j * 78.233) * 43758.5453
    return 10.0 * ((i % K) * (j + 1) % 7) + 4.0 * (noise - np.floor(noise))


def kmeans(x, centers: np.ndarray, iterations: int) -> np.ndarray:
    """The same code runs serially (x an ndarray) and in parallel (x a DistArray)."""
    for _ in range(iterations):
        distances = (centers ** 2).sum(axis=1) - 2 * (x @ centers.T)
        labels = distances.argmin(axis=1, keepdims=True)
        for c in range(K):
            mine = labels == c
            centers[c] = held(np.where(mine, x, 0).sum(axis=0)) / max(int(mine.sum()), 1)
    return centers


def held(a):
    """An array that every rank holds whole, as an ndarray: a reduction
    over the split axis gives a replicated DistArray, whose local part is
    all of it."""
    if isinstance(a, DistArray):
        assert not a.layout.split_axes()
        return a.local
    return a


def parallel(world: bsp.World, n: int, iterations: int) -> np.ndarray:
    x = DistArray.from_function(world, (n, D), points, distribution=("block", None))
    first = points(np.arange(K)[:, None], np.arange(D)[None, :])      # the first K points
    return kmeans(x, first, iterations)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    iterations = int(sys.argv[2]) if len(sys.argv) > 2 else 10
    results = bsp.run(parallel, n, iterations)
    centers = results[0]
    whole = points(np.arange(n)[:, None], np.arange(D)[None, :])
    expected = kmeans(whole, whole[:K].copy(), iterations)
    print(f"k-means of {n} points in {D} dimensions, {K} clusters, {iterations} iterations, {len(results)} ranks")
    print("centers (first 3 coordinates): " + "; ".join(" ".join(f"{v:.3f}" for v in c[:3]) for c in centers))
    ok = all(np.array_equal(r, centers) for r in results) and np.allclose(centers, expected, rtol=1e-9, atol=1e-9)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
