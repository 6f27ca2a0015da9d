"""pi by the midpoint rule, in the style of mpi4py's cpi-rma demo: rank 0
holds n, every rank gets it, computes its part of the sum, and accumulates
it into rank 0's one-element coarray with `op=np.add` (MPI's Accumulate).
The other ranks' images are empty: coarray shapes may differ per rank.

Supersteps: 2 (the get of n; the accumulating puts).  Costs: h = 8(p-1)
bytes at rank 0 in each; w = 4n/p flops.  Partial sums are added at rank 0
in pid order, so the result is the same, bit for bit, on every backend.

    python examples/cpi_accumulate.py [n]
    bsp run -n 4 examples/cpi_accumulate.py 1000000
"""

import math
import sys

import numpy as np

import bsp


def partial_sum(n: int, pid: int, nprocs: int) -> float:
    """h * sum of 4 / (1 + x^2) at the midpoints x = h(i - 1/2), i = pid+1, pid+1+p, ..."""
    h = 1.0 / n
    x = h * (np.arange(pid + 1, n + 1, nprocs, dtype=np.float64) - 0.5)
    return float(np.sum(4.0 / (1.0 + x * x)) * h)


def cpi(world: bsp.World, n: int) -> float | None:
    mine = 1 if world.pid == 0 else 0
    size = world.coarray(mine, dtype=np.int64)      # n lives on rank 0: the others' images are empty
    pi = world.coarray(mine, dtype=np.float64)      # so does the sum
    if world.pid == 0:
        size.local[0] = n
    got = size[0, 0]                                # a get: n as rank 0 holds it at this sync
    world.sync()
    pi.put(partial_sum(int(got.value), world.pid, world.nprocs), 0, 0, op=np.add)    # accumulate at rank 0
    world.sync()
    return float(pi.local[0]) if world.pid == 0 else None


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    results = bsp.run(cpi, n)
    pi = results[0]
    serial = sum(partial_sum(n, pid, len(results)) for pid in range(len(results)))     # the same, in pid order
    error = abs(pi - math.pi)
    print(f"pi is approximately {pi:.16f}, error is {error:.16f}")
    ok = pi == serial and error < 1.0 / n ** 2
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
