"""The sieve of Eratosthenes: the primes up to n, the numbers 0..n split over
the ranks in blocks (a DistArray of flags).

Every rank crosses out, in its own block, the multiples of the primes known
so far.  Once the primes up to b are crossed out, every number up to b*b
still standing is prime, so the ranks allgather those that stand in
(b, b*b]; the bound squares every round (2, 4, 16, 256, 65536, ...) until it
passes sqrt(n), and the sieve ends after a last crossing out.  Checked
against a serial numpy sieve.

BSP cost: about log2(log2(sqrt(n))) supersteps, each an allgather of the
new primes (h = 8 * the primes up to sqrt(n) in all), and one allreduce to
count; w = O((n/p) log log n) for the crossing out.

    python examples/sieve.py [n]        (default: n = 10000000)
"""

import math
import sys

import numpy as np

import bsp
from bsp import DistArray


def cross_out(flags: np.ndarray, first: int, primes: np.ndarray) -> None:
    """Clear the flags of the multiples of `primes` among the numbers first,
    first+1, ..., held in `flags`; a prime's smaller multiples have smaller
    factors, so each starts at its square."""
    last = first + len(flags)
    for prime in primes.tolist():
        start = max(prime * prime, -(-first // prime) * prime)
        if start < last:
            flags[start - first::prime] = False


def sieve(world: bsp.World, n: int) -> tuple[np.ndarray, int, int]:
    is_prime = DistArray.from_function(world, n + 1, lambda numbers: numbers >= 2, dtype=bool)
    first = int(is_prime.rows[0]) if len(is_prime.rows) else 0    # (a rank without numbers crosses none out)
    root = math.isqrt(n)
    new, bound = np.array([2]), 2            # the primes up to bound not yet crossed out
    while True:
        cross_out(is_prime.local, first, new)
        if bound >= root:
            break
        # Everything still standing up to bound**2 is prime: share it.
        lo, hi = bound + 1, min(bound * bound, root)
        mine = np.flatnonzero(is_prime.local[max(lo - first, 0):max(hi + 1 - first, 0)]) + max(lo, first)
        new, bound = np.concatenate(world.allgather(mine)), hi
    primes = np.flatnonzero(is_prime.local) + first
    return primes, world.allreduce(len(primes)), world.superstep


def serial(n: int) -> np.ndarray:
    flags = np.ones(n + 1, bool)
    flags[:2] = False
    for number in range(2, math.isqrt(n) + 1):
        if flags[number]:
            flags[number * number::number] = False
    return np.flatnonzero(flags)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000_000
    results = bsp.run(sieve, n)
    primes = np.concatenate([part for part, _, _ in results])
    count, supersteps = results[0][1], results[0][2]
    print(f"primes up to {n}: {count} of them, the largest {primes[-1] if count else None} "
          f"({len(results)} ranks, supersteps: {supersteps})")
    ok = count == len(primes) and np.array_equal(primes, serial(n))
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
