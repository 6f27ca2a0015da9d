"""Vertex programs in the Pregel style: a graph whose vertices are split over
the ranks in blocks, and a superstep that sends one value along every edge,
combined per target vertex.

    from bsp.pregel import Graph

    def degrees(world, n, sources, targets):       # this rank's share of the edges
        graph = Graph(world, n, sources, targets)  # 2 supersteps: edges go to their source's rank
        ones = np.ones(len(graph.vertices))
        return graph.push(ones, np.add, initial=0)  # 1 superstep: the in-degree of each vertex here

Pregel's other two ideas need no helper in BSP: an aggregator is
`world.allreduce`, and voting to halt is `world.allreduce(changed,
op=operator.or_)`, ending the loop on every rank at once.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from bsp.arrays.distribution import owner_of, rows_of
from bsp.world import World


class Graph:
    """A directed graph of n vertices, 0..n-1, split over the ranks in blocks
    (as a block DistArray of n rows): each rank holds its `vertices` (a range)
    and their out-edges.

    The communication pattern of a static graph is fixed, so it is worked out
    once, here: each rank learns which of its vertices the other ranks' edges
    point to, and `push` then sends values only, one per (rank, target
    vertex) pair, never one per edge.
    """

    def __init__(self, world: World, n: int, sources: Any, targets: Any):
        """Collective, 2 supersteps.  `sources[i] -> targets[i]` are edges
        (global vertex ids) held on this rank, any of them: each goes to the
        rank of its source (h: the edges a rank holds), then each rank tells
        each other which targets it will send values for (h: the distinct
        targets of its edges).  Raises ValueError for a vertex id outside
        0..n-1."""
        sources, targets = np.asarray(sources, np.int64), np.asarray(targets, np.int64)
        if sources.shape != targets.shape or sources.ndim != 1:
            raise ValueError(f"sources and targets must be two 1-D arrays of the same length, "
                             f"not of shapes {sources.shape} and {targets.shape}")
        for ids in (sources, targets):
            if len(ids) and not (0 <= ids.min() and ids.max() < n):
                raise ValueError(f"vertex ids must lie in 0..{n - 1}, this rank holds {ids.min()}..{ids.max()}")
        p = world.nprocs
        self.world, self.n = world, n
        self.vertices = rows_of(n, world.pid, p, "block")
        owner = owner_of(sources, n, p, "block")
        arrived = world.alltoall([np.stack([sources[owner == rank], targets[owner == rank]]) for rank in range(p)])
        sources, targets = np.concatenate(arrived, axis=1)
        self.out_degree = np.bincount(sources - self.vertices.start, minlength=len(self.vertices))
        self.edges = len(sources)

        # Sorted by target (stably, so sums run in a fixed order), each run of
        # edges to one target folds into one value; the targets, sorted, fall
        # into one run per owning rank.
        order = np.argsort(targets, kind="stable")
        self._edge_sources = sources[order] - self.vertices.start
        distinct, self._runs = np.unique(targets[order], return_index=True)
        self._splits = np.searchsorted(owner_of(distinct, n, p, "block"), np.arange(1, p))
        arrived = world.alltoall(np.split(distinct, self._splits))
        self._landing = np.concatenate(arrived) - self.vertices.start    # where pushed values will land here

    def push(self, values: np.ndarray, combine: np.ufunc, initial: Any) -> np.ndarray:
        """Send `values[v]` along every out-edge of every vertex v held here,
        and return, for each vertex held here, `initial` (a scalar or an
        array, one value per vertex) folded with `combine` (a binary ufunc
        such as np.add or np.minimum) over the values that reached it.
        Messages to one target are combined before they leave a rank, so
        1 superstep, h = 8 bytes per distinct (rank, target vertex) pair."""
        values = np.asarray(values)
        if values.shape != (len(self.vertices),):
            raise ValueError(f"push needs one value per vertex held here ({len(self.vertices)}), "
                             f"not an array of shape {values.shape}")
        combined = combine.reduceat(values[self._edge_sources], self._runs) if self.edges else values[:0]
        arrived = np.concatenate(self.world.alltoall(np.split(combined, self._splits)))
        result = np.array(np.broadcast_to(initial, values.shape), dtype=np.result_type(values, initial))
        combine.at(result, self._landing, arrived)
        return result
