"""Inner product of two block-distributed vectors: each rank computes its
part, one allreduce adds them up.  BSP cost: one superstep, h = 8(p-1) bytes.

    python examples/inner_product.py [n]
    bsp run -n 4 examples/inner_product.py 10000000
"""

import sys

import numpy as np

import bsp


def block(n: int, pid: int, nprocs: int) -> range:
    """The global indices rank `pid` owns when n items are split in blocks."""
    return range(pid * n // nprocs, (pid + 1) * n // nprocs)


def vectors(indices: range) -> tuple[np.ndarray, np.ndarray]:
    """x[i] = sin(i) and y[i] = cos(i / 3), for the given global indices."""
    i = np.arange(indices.start, indices.stop, dtype=np.float64)
    return np.sin(i), np.cos(i / 3)


def inner_product(world: bsp.World, n: int) -> float:
    x, y = vectors(block(n, world.pid, world.nprocs))
    return world.allreduce(float(x @ y))


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    results = bsp.run(inner_product, n)
    x, y = vectors(range(n))
    serial = float(x @ y)
    ok = all(r == results[0] for r in results) and np.isclose(results[0], serial, rtol=1e-10, atol=1e-8)
    print(f"n = {n}, {len(results)} ranks: x.y = {results[0]:.10f}")
    print(f"serial numpy:          x.y = {serial:.10f}")
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
