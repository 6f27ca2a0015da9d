"""bsp.pregel.Graph against the same computation on the whole edge list."""

import numpy as np
import pytest

from bsp.pregel import Graph
from bsp.testing import spmd

NPROCS = [1, 2, 3, 4]


def edge_list(n, m, seed=7):
    rng = np.random.default_rng(seed)
    return rng.integers(0, n, m), rng.integers(0, n, m)


def mine(world, array):
    """This rank's share of a global edge list: every p-th edge, so that most
    edges start on a rank other than their source's."""
    return array[world.pid::world.nprocs]


@spmd(nprocs=NPROCS)
def test_edges_go_to_their_source_and_push_sums_along_them(world):
    n, m = 23, 150
    sources, targets = edge_list(n, m)
    graph = Graph(world, n, mine(world, sources), mine(world, targets))
    held = np.arange(graph.vertices.start, graph.vertices.stop)
    assert graph.out_degree.tolist() == np.bincount(sources, minlength=n)[held].tolist()
    assert graph.edges == int(np.isin(sources, held).sum())
    weights = held * 10 + 1                      # integers: sums are exact, whatever their order
    expected = np.zeros(n, np.int64)
    np.add.at(expected, targets, (np.arange(n) * 10 + 1)[sources])
    assert graph.push(weights, np.add, initial=0).tolist() == expected[held].tolist()
    assert graph.push(weights, np.add, initial=5).tolist() == (expected[held] + 5).tolist()


@spmd(nprocs=NPROCS)
def test_push_with_minimum_folds_into_an_initial_array(world):
    n, m = 31, 40
    sources, targets = edge_list(n, m, seed=3)
    graph = Graph(world, n, mine(world, sources), mine(world, targets))
    label = np.arange(graph.vertices.start, graph.vertices.stop)[::-1] * 1.5
    everyone = np.concatenate(world.allgather(label))
    expected = everyone.copy()
    np.minimum.at(expected, targets, everyone[sources])
    smallest = graph.push(label, np.minimum, initial=label)
    assert smallest.dtype == np.float64
    assert smallest.tolist() == expected[graph.vertices.start:graph.vertices.stop].tolist()


@spmd(nprocs=NPROCS)
def test_no_edges_and_more_ranks_than_vertices(world):
    graph = Graph(world, 2, [], [])
    assert graph.edges == 0 and graph.out_degree.tolist() == [0] * len(graph.vertices)
    assert graph.push(np.ones(len(graph.vertices)), np.add, 0.0).tolist() == [0.0] * len(graph.vertices)
    ring = Graph(world, 2, [0, 1] if world.pid == 0 else [], [1, 0] if world.pid == 0 else [])
    held = np.arange(ring.vertices.start, ring.vertices.stop)
    assert ring.push(held + 1, np.add, 0).tolist() == (2 - held).tolist()


@spmd(nprocs=[2])
def test_bad_vertices_and_values_raise_at_the_call(world):
    with pytest.raises(ValueError, match="vertex ids must lie in 0..4"):
        Graph(world, 5, [0, 5], [1, 1])
    with pytest.raises(ValueError, match="two 1-D arrays of the same length"):
        Graph(world, 5, [0, 1], [1])
    graph = Graph(world, 5, [0], [4])
    with pytest.raises(ValueError, match="one value per vertex held here"):
        graph.push(np.zeros(5), np.add, 0.0)
