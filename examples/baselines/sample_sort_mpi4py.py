"""examples/sample_sort.py written with plain mpi4py, for comparison: the same
keys, the same algorithm (a regular sample from every rank, the same p-1
splitters everywhere, one total exchange, one local sort), with buffer-based
collectives on numpy arrays.  The keys and the bucketing come from
examples/sample_sort.py, so only the parallel part differs.  Run it under MPI only:

    mpiexec -n 2 python examples/baselines/sample_sort_mpi4py.py [N] [--timing]
"""

import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from sample_sort import SAMPLES, buckets, keys_for  # noqa: E402


def block(n: int, pid: int, p: int) -> np.ndarray:
    """The global indices of the keys rank pid holds, n keys split in blocks."""
    base, extra = divmod(n, p)
    lo = pid * base + min(pid, extra)
    return np.arange(lo, lo + base + (pid < extra))


def sample_sort(comm: MPI.Comm, n: int) -> tuple[np.ndarray, float]:
    p = comm.size
    local = keys_for(block(n, comm.rank, p))
    comm.Barrier()
    start = time.perf_counter()
    samples = np.ascontiguousarray(local[::max(1, len(local) // (SAMPLES * p))])   # MPI buffers are contiguous
    sizes = np.array(comm.allgather(len(samples)))
    everyone = np.empty(sizes.sum(), np.int64)
    comm.Allgatherv(samples, [everyone, sizes])
    everyone.sort()
    if len(everyone):
        splitters = everyone[np.arange(1, p) * len(everyone) // p]
    else:
        splitters = np.zeros(p - 1, np.int64)      # no keys anywhere: every bucket is empty
    parts = buckets(local, splitters)
    send_counts = np.array([len(part) for part in parts])
    receive_counts = np.empty(p, np.int64)
    comm.Alltoall(send_counts, receive_counts)
    mine = np.empty(receive_counts.sum(), np.int64)
    comm.Alltoallv([np.concatenate(parts), send_counts], [mine, receive_counts])
    mine.sort()
    return mine, time.perf_counter() - start


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(arguments[0]) if arguments else 1 << 20
    comm = MPI.COMM_WORLD
    mine, seconds = sample_sort(comm, n)
    sizes = comm.gather(len(mine), root=0)
    seconds = comm.reduce(seconds, op=MPI.MAX, root=0)
    parallel = np.empty(n, np.int64) if comm.rank == 0 else None
    comm.Gatherv(mine, [parallel, sizes] if comm.rank == 0 else None, root=0)
    if comm.rank == 0:
        all_keys = keys_for(np.arange(n))
        start = time.perf_counter()
        expected = np.sort(all_keys)
        serial_seconds = time.perf_counter() - start
        print(f"sample sort of {n} int64 keys on {comm.size} ranks: parts of {min(sizes)} to {max(sizes)} keys")
        if "--timing" in sys.argv:
            print(f"time: {seconds:.3f} s; np.sort on one core: {serial_seconds:.3f} s; "
                  f"speed-up {serial_seconds / seconds:.2f}")
        ok = np.array_equal(parallel, expected)
        print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
        raise SystemExit(0 if ok else 1)
