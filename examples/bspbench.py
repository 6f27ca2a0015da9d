"""Bisseling's bspbench (BSPedupack), in pybsp: the BSP parameters r, g and
l of this machine, measured the way the original measures them.

- r, the computing rate of one rank in flop/s, from DAXPY-like vector
  updates (y += a*x; z -= b*x) of length n = 1, 2, 4, ..., MAXN (here with
  numpy); the rate at MAXN, averaged over the ranks, is r;
- for h = 0, 1, ..., MAXH, the time of an h-relation in which every rank
  puts h single doubles, one put each (`dest[pid, i] = x`), cyclically over
  the other ranks, repeated NITERS times; then g and l from a least-squares
  fit of T(h) = l + g*h, over h = 0..p and over h = p..MAXH, in flops
  (time * r) and in microseconds.  g is per word (a double, 8 bytes).

Supersteps: a few for r, then (MAXH + 1) * (NITERS + 1).  Costs: the
h-relation h (words).  The output is timings, so it differs from run to run.

    python examples/bspbench.py [MAXH] [NITERS]
    bsp run -n 4 examples/bspbench.py 256 100
"""

import sys
import time

import numpy as np

import bsp

MAXN = 1024


def computing_rate(world: bsp.World, niters: int) -> list[tuple[int, float, float, float]]:
    """Per n: (n, the min, max and average rate over the ranks, flop/s)."""
    rates = []
    n = 1
    while n <= MAXN:
        alpha, beta = 1.0 / 3.0, 4.0 / 9.0
        x = np.arange(n, dtype=np.float64)
        y, z = x.copy(), x.copy()
        start = time.perf_counter()
        for _ in range(niters):
            y += alpha * x
            z -= beta * x
        seconds = time.perf_counter() - start
        times = world.allgather(seconds)
        flops = 4 * niters * n
        per_rank = [flops / max(t, 1e-12) for t in times]
        rates.append((n, min(per_rank), max(per_rank), sum(per_rank) / len(per_rank)))
        n *= 2
    return rates


def pattern(pid: int, nprocs: int, h: int) -> tuple[list[int], list[int]]:
    """bspbench's h-relation: the i-th put goes to rank (pid+1 + i%(p-1))%p,
    into index pid + (i//(p-1))*p of its `dest` (to itself when alone)."""
    if nprocs == 1:
        return [0] * h, list(range(h))
    procs = [(pid + 1 + i % (nprocs - 1)) % nprocs for i in range(h)]
    indices = [pid + (i // (nprocs - 1)) * nprocs for i in range(h)]
    return procs, indices


def bspbench(world: bsp.World, maxh: int, niters: int) -> tuple[list, list[float]]:
    """The rates of `computing_rate`, and for h = 0..maxh the time of one
    h-relation of single-double puts, in seconds (on rank 0)."""
    rates = computing_rate(world, niters)
    dest = world.coarray(2 * maxh + world.nprocs, dtype=np.float64)
    source = np.arange(maxh, dtype=np.float64)
    times = []
    for h in range(maxh + 1):
        procs, indices = pattern(world.pid, world.nprocs, h)
        world.sync()
        start = time.perf_counter()
        for _ in range(niters):
            for i in range(h):
                dest[procs[i], indices[i]] = source[i]
            world.sync()
        times.append((time.perf_counter() - start) / niters)
    return rates, times


def least_squares(hs: list[int], times: list[float]) -> tuple[float, float]:
    """g and l of the unweighted least-squares fit of T(h) = l + g*h."""
    g, l = np.polyfit(np.array(hs, float), np.array(times, float), 1)
    return float(g), float(l)


def report(nprocs: int, rates: list, times: list[float]) -> list[str]:
    r = rates[-1][3]
    lines = [f"Using {nprocs} processors"]
    for n, low, high, average in rates:
        lines.append(f"n= {n:5d} min= {low / 1e6:9.3f} max= {high / 1e6:9.3f} av= {average / 1e6:9.3f} Mflop/s")
    for h, seconds in enumerate(times):
        lines.append(f"Time of {h:5d}-relation= {seconds:.6f} sec= {seconds * r:10.0f} flops")
    lines.append("size of double = 8 bytes")
    maxh = len(times) - 1
    ranges = [("h=0 to p   ", 0, min(nprocs, maxh)), ("h=p to HMAX", min(nprocs, maxh), maxh)]
    bottom = None
    for name, low, high in ranges:
        if high - low >= 1:
            g, l = least_squares(list(range(low, high + 1)), times[low:high + 1])
            lines.append(f"Range {name}: g= {g * r:.1f}, l= {l * r:.1f} flops; "
                         f"g= {g * 1e6:.3f} us/word, l= {l * 1e6:.3f} us")
            bottom = (g, l)
    lines.append("The bottom line for this BSP computer is:")
    if bottom is not None:
        g, l = bottom
        lines.append(f"p= {nprocs}, r= {r / 1e6:.3f} Mflop/s, g= {g * r:.1f}, l= {l * r:.1f} "
                     f"(g= {g * 1e6:.3f} us/word, l= {l * 1e6:.3f} us)")
    return lines


if __name__ == "__main__":
    maxh = int(sys.argv[1]) if len(sys.argv) > 1 else 256
    niters = int(sys.argv[2]) if len(sys.argv) > 2 else 100
    results = bsp.run(bspbench, maxh, niters)
    rates, times = results[0]
    print("\n".join(report(len(results), rates, times)))
