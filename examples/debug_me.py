"""A histogram with a bug that only rank 2 of 4 trips over: the worked
example of the README's Debugging section (record the run, replay rank 2
under pdb, find the bug).

Each rank holds a block of the n readings (integers below 1000) and owns a
range of `width` bins; it sends each reading to the owner of its bin, which
counts it.  The bug: a rank computes `width` from its own largest reading,
where it must use the largest of all ranks.  The ranks then disagree about
who owns which bin, and a rank can be sent a reading outside its range.
With --fixed, an allreduce finds the largest reading first.  BSP cost: one
superstep of h <= 8n/p bytes per rank, then a gather (h = 8 * bins); --fixed
adds an allreduce.

    bsp run -n 4 examples/debug_me.py            # rank 2 raises IndexError
    bsp run -n 4 --record run.bsprec examples/debug_me.py
    bsp replay run.bsprec --rank 2 --pdb
    bsp run -n 4 examples/debug_me.py --fixed    # check against the serial answer: OK
"""

import sys

import numpy as np

import bsp

SEED = 567
LARGEST = 1000          # readings are integers in 0..LARGEST-1


def readings(n: int) -> np.ndarray:
    return np.random.default_rng(SEED).integers(0, LARGEST, n)


def histogram(world: bsp.World, n: int, fixed: bool = False) -> list[np.ndarray] | None:
    mine = readings(n)[world.pid * n // world.nprocs:(world.pid + 1) * n // world.nprocs]
    top = int(mine.max(initial=0))
    if fixed:
        top = world.allreduce(top, op=max)
    width = -(-(top + 1) // world.nprocs)       # bins per rank: ranks own 0..width-1, width..2*width-1, ...
    owner = mine // width
    for dest in range(world.nprocs):
        world.send(mine[owner == dest], dest)
    world.sync()
    counts = np.zeros(width, np.int64)
    first = world.pid * width
    for source, chunk in world.messages():
        for reading in chunk:
            counts[reading - first] += 1
    return world.gather(counts)


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(arguments[0]) if arguments else 40
    results = bsp.run(histogram, n, "--fixed" in sys.argv)
    counts = np.concatenate(results[0])
    expected = np.bincount(readings(n), minlength=len(counts))
    ok = np.array_equal(counts, expected)
    print(f"histogram of {n} readings on {len(results)} ranks: {len(counts)} bins, {counts.sum()} counted")
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
