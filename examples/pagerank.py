"""PageRank of a random directed graph, in the Pregel style.

Rank 0 makes the edge list and scatters it; each edge then goes to the rank
that holds its source vertex (vertices are split over the ranks in blocks:
bsp.pregel.Graph).  Every iteration, each vertex sends its rank divided by
its out-degree along each of its out-edges; the messages for one target are
added up on the sending rank before they leave (a combiner), so a rank sends
one number per distinct target, not one per edge.  Vertices without
out-edges spread their rank over every vertex: their total is an allreduce
(an aggregator).  Checked against the same iteration on the whole graph.

BSP cost: 3 supersteps to set up (the scatter, h = 16m bytes at rank 0; the
edges to their source's rank, h <= 16m/p; the targets to theirs, h <= 8m/p),
then 2 per iteration: the push, h <= 8 min(m/p, n), and the allreduce,
h = 8(p-1); w = O(m/p + n/p) per iteration, for n vertices and m edges.

    python examples/pagerank.py [n] [iterations] [--timing]
    (defaults: 100000 vertices, 8 edges per vertex, 50 iterations)
"""

import sys
import time

import numpy as np

import bsp
from bsp import DistArray
from bsp.pregel import Graph

DAMPING = 0.85
EDGES_PER_VERTEX = 8


def random_edges(n: int, seed: int = 2026) -> np.ndarray:
    """Edges (source, target): sources uniform, targets skewed towards the
    low vertex ids, so that some vertices are far more popular than others."""
    rng = np.random.default_rng(seed)
    m = EDGES_PER_VERTEX * n
    return np.stack([rng.integers(0, n, m), (n * rng.random(m) ** 3).astype(np.int64)], axis=1)


def pagerank(world: bsp.World, n: int, iterations: int) -> tuple[np.ndarray, float]:
    edges = random_edges(n) if world.pid == 0 else None
    world.sync()
    start = time.perf_counter()
    edges = DistArray.from_root(world, edges)
    graph = Graph(world, n, edges.local[:, 0], edges.local[:, 1])
    dangling = graph.out_degree == 0
    per_edge = 1 / np.maximum(graph.out_degree, 1)
    rank = np.full(len(graph.vertices), 1 / n)
    for _ in range(iterations):
        lost = world.allreduce(rank[dangling].sum())
        inbox = graph.push(rank * per_edge, np.add, initial=0.0)
        rank = (1 - DAMPING) / n + DAMPING * (inbox + lost / n)
    return rank, time.perf_counter() - start


def serial(n: int, edges: np.ndarray, iterations: int) -> np.ndarray:
    sources, targets = edges[:, 0], edges[:, 1]
    out_degree = np.bincount(sources, minlength=n)
    rank = np.full(n, 1 / n)
    for _ in range(iterations):
        lost = rank[out_degree == 0].sum()
        inbox = np.bincount(targets, weights=(rank / np.maximum(out_degree, 1))[sources], minlength=n)
        rank = (1 - DAMPING) / n + DAMPING * (inbox + lost / n)
    return rank


def report(n: int, iterations: int, nprocs: int, rank: np.ndarray, seconds: float) -> bool:
    """Print the highest ranks (and the time, with --timing) and the check
    against the serial answer; return whether it passed."""
    top = np.argsort(-rank, kind="stable")[:5]
    print(f"PageRank of a random graph of {n} vertices and {EDGES_PER_VERTEX * n} edges, "
          f"{iterations} iterations, {nprocs} ranks")
    print("highest ranks: " + ", ".join(f"vertex {v} {rank[v]:.6f}" for v in top))
    if "--timing" in sys.argv:
        print(f"time: {seconds:.3f} s")
    ok = np.allclose(rank, serial(n, random_edges(n), iterations), rtol=1e-10, atol=0)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    return ok


if __name__ == "__main__":
    arguments = [a for a in sys.argv[1:] if not a.startswith("--")]
    n = int(arguments[0]) if arguments else 100_000
    iterations = int(arguments[1]) if len(arguments) > 1 else 50
    results = bsp.run(pagerank, n, iterations)
    rank = np.concatenate([part for part, _ in results])
    ok = report(n, iterations, len(results), rank, max(seconds for _, seconds in results))
    raise SystemExit(0 if ok else 1)
