"""Connected components of a random undirected graph, by label propagation.

Rank 0 makes the edge list and scatters it; each edge, in both directions,
goes to the rank that holds its source vertex (bsp.pregel.Graph).  Every
vertex starts with its own id as its label.  Each round, every vertex sends
its label to its neighbours, the messages for one vertex combined with
np.minimum before they leave a rank, and takes the smallest label it got.
The loop ends after the first round in which no rank changed a label: an
allreduce of "changed" decides it, so every rank stops in the same
superstep.  Each vertex ends with the smallest id of its component.  Checked
against a union-find over the edge list, in a plain loop.

BSP cost: 3 supersteps to set up, then 2 per round: the push, h <= 8
min(2m/p, n) bytes, and the allreduce, h = p-1; as many rounds as the
longest path from a vertex to the smallest of its component, plus one.

    python examples/components.py [n]        (default: 200000 vertices, n edges)
"""

import operator
import sys

import numpy as np

import bsp
from bsp import DistArray
from bsp.pregel import Graph


def random_edges(n: int, seed: int = 8) -> np.ndarray:
    """n undirected edges between uniformly random vertices: a giant
    component and many small ones."""
    return np.random.default_rng(seed).integers(0, n, (n, 2))


def components(world: bsp.World, n: int) -> tuple[np.ndarray, int]:
    edges = DistArray.from_root(world, random_edges(n) if world.pid == 0 else None)
    u, v = edges.local[:, 0], edges.local[:, 1]
    graph = Graph(world, n, np.concatenate([u, v]), np.concatenate([v, u]))
    label = np.arange(graph.vertices.start, graph.vertices.stop)
    rounds = 0
    while True:
        smallest = graph.push(label, np.minimum, initial=label)
        changed = bool((smallest < label).any())
        label, rounds = smallest, rounds + 1
        if not world.allreduce(changed, op=operator.or_):     # every rank votes to halt
            return label, rounds


def serial(n: int, edges: np.ndarray) -> np.ndarray:
    """Union-find; each root is the smallest vertex of its set."""
    parent = list(range(n))

    def find(x: int) -> int:
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in edges.tolist():
        a, b = find(a), find(b)
        parent[max(a, b)] = min(a, b)
    return np.array([find(x) for x in range(n)])


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200_000
    results = bsp.run(components, n)
    label = np.concatenate([part for part, _ in results])
    sizes = np.bincount(label, minlength=n)
    print(f"connected components of a random graph of {n} vertices and {n} edges, {len(results)} ranks")
    print(f"{np.count_nonzero(sizes)} components, the largest of {sizes.max()} vertices "
          f"(labelled {sizes.argmax()}), found in {results[0][1]} rounds")
    ok = np.array_equal(label, serial(n, random_edges(n)))
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
