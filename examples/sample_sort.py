"""BSP sample sort of N int64 keys held in a DistArray.

Each rank draws a regular sample of its keys; every rank gathers all the
samples and picks the same p-1 splitters from them; each rank moves its
keys into buckets, one per rank, by the splitters (in place: the keys are
not needed afterwards), and sends every other rank its bucket (one total
exchange); each rank sorts what it got, in one array with its own bucket.
Rank i then holds the i-th part of the sorted keys.  Checked against np.sort
of all the keys.

BSP cost: 2 supersteps (an allgather of p*S samples, then a total exchange
with h about 8N/p bytes); w = O((N/p) log(N/p)) for the one sort of each rank.

    python examples/sample_sort.py [N] [--timing]      (default N = 2**20)
"""

import sys
import time

import numpy as np

import bsp
from bsp import DistArray


def keys_for(rows: np.ndarray, seed: int = 2026) -> np.ndarray:
    """Pseudo-random keys, a function of the global index (splitmix64), so
    that every rank can make its own part and the check can make them all."""
    z = rows.astype(np.uint64) + np.uint64(seed * 0x9E3779B97F4A7C15 % 2**64)
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return (z ^ (z >> np.uint64(31))).view(np.int64)


SAMPLES = 1024   # per rank and per rank: p * SAMPLES in all on each rank


def sample_sort(world: bsp.World, n: int) -> tuple[np.ndarray, float]:
    keys = DistArray.from_function(world, n, keys_for, dtype=np.int64)
    world.sync()
    start = time.perf_counter()
    p, local = world.nprocs, keys.local
    samples = local[::max(1, len(local) // (SAMPLES * p))]
    everyone = np.sort(np.concatenate(world.allgather(samples)))
    if len(everyone):
        splitters = everyone[np.arange(1, p) * len(everyone) // p]
    else:
        splitters = np.zeros(p - 1, np.int64)      # no keys anywhere: every bucket is empty
    cuts = [0, *bucket_in_place(local, splitters), len(local)]
    for dest in range(p):
        if dest != world.pid:       # unbuffered: `local` does not change before the sync
            world.send(local[cuts[dest]:cuts[dest + 1]], dest, copy=False)
    world.sync()
    own = local[cuts[world.pid]:cuts[world.pid + 1]]
    mine = np.concatenate([own, *(bucket for _, bucket in world.messages())])
    mine.sort()
    return mine, time.perf_counter() - start


def bucket_in_place(keys: np.ndarray, splitters: np.ndarray) -> list[int]:
    """Reorder `keys` so that bucket i, the keys from splitter i-1
    (included) to splitter i, is keys[cuts[i-1]:cuts[i]]; return the cuts.
    One pass counts each bucket; an introselect (ndarray.partition, in
    place: no copy of the keys) then moves them into place, cheaper than a
    mask per bucket or a sort."""
    cuts = [int(np.count_nonzero(keys < splitter)) for splitter in splitters]
    inner = [cut for cut in cuts if 0 < cut < len(keys)]
    if inner:
        keys.partition(inner)
    return cuts


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(arguments[0]) if arguments else 1 << 20
    results = bsp.run(sample_sort, n)
    parallel = np.concatenate([part for part, _ in results])
    all_keys = keys_for(np.arange(n))
    start = time.perf_counter()
    expected = np.sort(all_keys)
    serial_seconds = time.perf_counter() - start
    print(f"sample sort of {n} int64 keys on {len(results)} ranks: "
          f"parts of {min(len(r) for r, _ in results)} to {max(len(r) for r, _ in results)} keys")
    if "--timing" in sys.argv:
        parallel_seconds = max(seconds for _, seconds in results)
        print(f"time: {parallel_seconds:.3f} s; np.sort on one core: {serial_seconds:.3f} s; "
              f"speed-up {serial_seconds / parallel_seconds:.2f}")
    ok = np.array_equal(parallel, expected)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
