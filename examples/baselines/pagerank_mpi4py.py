"""examples/pagerank.py written with plain mpi4py, for comparison: the same
graph, the same algorithm (edges go to their source's rank, messages are
combined per target before they leave, the communication pattern is worked
out once), with buffer-based collectives on numpy arrays.  The graph, the
serial check and the report come from examples/pagerank.py, so only the
parallel part differs.  Run it under MPI only:

    mpiexec -n 2 python examples/baselines/pagerank_mpi4py.py [n] [iterations] [--timing]
"""

import sys
import time
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from pagerank import DAMPING, EDGES_PER_VERTEX, random_edges, report  # noqa: E402


def block(n: int, pid: int, p: int) -> tuple[int, int]:
    """The range lo..hi-1 of n items that rank pid holds, split in blocks."""
    base, extra = divmod(n, p)
    lo = pid * base + min(pid, extra)
    return lo, lo + base + (pid < extra)


def owner(items: np.ndarray, n: int, p: int) -> np.ndarray:
    base, extra = divmod(n, p)
    boundary = extra * (base + 1)
    if base == 0:
        return items
    return np.where(items < boundary, items // (base + 1), extra + (items - boundary) // base)


def alltoallv(comm: MPI.Comm, data: np.ndarray, counts: np.ndarray) -> np.ndarray:
    """Send data[sum(counts[:j]):][:counts[j]] to rank j; return what arrived."""
    arrived = np.empty(comm.size, np.int64)
    comm.Alltoall(counts, arrived)
    received = np.empty(arrived.sum(), data.dtype)
    comm.Alltoallv([data, counts], [received, arrived])
    return received


def pagerank(comm: MPI.Comm, n: int, iterations: int) -> tuple[np.ndarray | None, float]:
    pid, p = comm.rank, comm.size
    edges = random_edges(n) if pid == 0 else None
    comm.Barrier()
    start = time.perf_counter()
    # Scatter the edge list in blocks of edges.
    m = EDGES_PER_VERTEX * n
    counts = np.array([2 * (hi - lo) for lo, hi in (block(m, rank, p) for rank in range(p))])
    mine = np.empty((counts[pid] // 2, 2), np.int64)
    comm.Scatterv([edges, counts] if pid == 0 else None, mine, root=0)
    # Each edge goes to the rank of its source.
    lo, hi = block(n, pid, p)
    to = owner(mine[:, 0], n, p)
    order = np.argsort(to, kind="stable")
    arrived = alltoallv(comm, mine[order].reshape(-1), 2 * np.bincount(to, minlength=p))
    sources, targets = arrived.reshape(-1, 2).T
    out_degree = np.bincount(sources - lo, minlength=hi - lo)
    # The pattern: values for one target are combined into one; each rank
    # learns once where the values it will receive land.
    by_target = np.argsort(targets, kind="stable")
    edge_sources = sources[by_target] - lo
    distinct, runs = np.unique(targets[by_target], return_index=True)
    send_counts = np.bincount(owner(distinct, n, p), minlength=p)
    landing = alltoallv(comm, distinct, send_counts) - lo
    receive_counts = np.empty(p, np.int64)
    comm.Alltoall(send_counts, receive_counts)
    received = np.empty(receive_counts.sum())

    dangling = out_degree == 0
    per_edge = 1 / np.maximum(out_degree, 1)
    rank = np.full(hi - lo, 1 / n)
    lost = np.empty(1)
    for _ in range(iterations):
        comm.Allreduce(np.array([rank[dangling].sum()]), lost)
        values = rank * per_edge
        combined = np.add.reduceat(values[edge_sources], runs) if len(runs) else np.empty(0)
        comm.Alltoallv([combined, send_counts], [received, receive_counts])
        inbox = np.zeros(hi - lo)
        np.add.at(inbox, landing, received)
        rank = (1 - DAMPING) / n + DAMPING * (inbox + lost[0] / n)
    seconds = comm.reduce(time.perf_counter() - start, op=MPI.MAX, root=0)
    sizes = np.array(comm.gather(hi - lo, root=0) or [0])
    whole = np.empty(n) if pid == 0 else None
    comm.Gatherv(rank, [whole, sizes] if pid == 0 else None, root=0)
    return whole, seconds


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(arguments[0]) if arguments else 100_000
    iterations = int(arguments[1]) if len(arguments) > 1 else 50
    comm = MPI.COMM_WORLD
    rank, seconds = pagerank(comm, n, iterations)
    if comm.rank == 0:
        raise SystemExit(0 if report(n, iterations, comm.size, rank, seconds) else 1)
