"""A @ B for DistArrays (SUMMA) against numpy: every grid shape, mixed
distributions, shapes that do not divide and empty parts, any number of
panels; and the bytes each rank sends and receives per panel."""

import math

import numpy as np
import pytest

import bsp
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.core import wire
from bsp.testing import require_nprocs, spmd

DISTRIBUTIONS = [("block", "block"), ("cyclic", ("block-cyclic", 2)), (("block-cyclic", 3), "cyclic")]


def integer_matrix(shape, seed):
    """Small integers as floats: every product and sum is exact, so the
    distributed result must equal numpy's bit for bit."""
    return np.random.default_rng(seed).integers(-3, 4, shape).astype(np.float64)


def grids(nprocs):
    return sorted({None, (1, nprocs), (nprocs, 1), *[(d, nprocs // d) for d in range(2, nprocs) if nprocs % d == 0]},
                  key=str)


@spmd(nprocs=[1, 2, 3, 4])
def test_products_on_every_grid_equal_numpys(world):
    for seed, (m, k, n) in enumerate([(7, 5, 6), (1, 9, 2), (0, 3, 4), (4, 0, 3), (3, 2, 0), (13, 11, 12)]):
        a, b = integer_matrix((m, k), seed), integer_matrix((k, n), seed + 100)
        for grid in grids(world.nprocs):
            for da, db in zip(DISTRIBUTIONS, DISTRIBUTIONS[::-1]):
                x = DistArray.from_function(world, (m, k), lambda i, j: a[i, j], distribution=da, grid=grid)
                y = DistArray.from_function(world, (k, n), lambda i, j: b[i, j], distribution=db, grid=grid)
                c = x @ y
                assert c.shape == (m, n) and c.grid == x.grid
                assert c.layout.specs == (x.layout.specs[0], y.layout.specs[1])
                assert np.array_equal(c.allgather(), a @ b), (m, k, n, grid, da, db)
            for panels in {1, min(k, 3) or 1}:     # the default was 1: here, several supersteps
                assert np.array_equal(x.matmul(y, panels=panels).allgather(), a @ b)


@spmd(nprocs=[1, 3])
def test_row_split_matrices_multiply_in_the_one_dimensional_form(world):
    a, b = integer_matrix((6, 4), 1), integer_matrix((4, 5), 2)
    x = DistArray.from_function(world, (6, 4), lambda rows: a[rows], distribution="cyclic")
    y = DistArray.from_function(world, (4, 5), lambda rows: b[rows])
    c = x @ y
    assert c.distribution == "cyclic" and np.array_equal(c.local, (a @ b)[c.rows])


@spmd(nprocs=[2])
def test_mixed_dtypes_promote_like_numpy(world):
    x = DistArray.from_function(world, (3, 3), lambda i, j: i + j, dtype=np.int32, distribution=("block", None))
    y = DistArray.from_function(world, (3, 2), lambda i, j: i - j + 0.5, dtype=np.float32, distribution=("block", None))
    c = x @ y
    assert c.dtype == np.result_type(np.int32, np.float32)
    i, j = np.indices((3, 3))
    assert np.allclose(c.allgather(), (i + j) @ (np.indices((3, 2))[0] - np.indices((3, 2))[1] + 0.5))


def one_product(world, m, k, n, grid, panels):
    x = DistArray.zeros(world, (m, k), distribution=("block", "block"), grid=grid)
    y = DistArray.zeros(world, (k, n), distribution=("block", "block"), grid=grid)
    world.sync()
    x.matmul(y, panels=panels)


def message_bytes(shape):
    data, buffers = wire.dumps(np.empty(shape))
    return len(data) + sum(buffer.nbytes for buffer in buffers)


def block(n, procs, coord, lo=0, hi=None):
    """How many of lo..hi-1 coordinate `coord` holds of n in blocks."""
    base, extra = divmod(n, procs)
    start = coord * base + min(coord, extra)
    stop = start + base + (coord < extra)
    hi = n if hi is None else hi
    return max(0, min(stop, hi) - max(start, lo))


@pytest.mark.parametrize("nprocs, grid", [(4, (2, 2)), (3, (3, 1)), (3, (1, 3))])
def test_each_panel_goes_to_the_grid_row_and_column_and_nowhere_else(nprocs, grid):
    require_nprocs(nprocs)
    (m, k, n), panels = (9, 7, 10), 2
    profiles = []
    bsp.run(one_product, m, k, n, grid, panels, nprocs=nprocs, profile=profiles.append)
    [profile] = profiles
    steps = [step for step, kind in enumerate(profile.kinds) if kind == superstep_kinds.MATMUL]
    assert len(steps) == panels
    M, N = grid
    edges = [k * j // panels for j in range(panels + 1)]
    for step, lo, hi in zip(steps, edges, edges[1:]):
        for pid in range(nprocs):
            s, t = divmod(pid, N)
            a_piece = (block(m, M, s), block(k, N, t, lo, hi))
            b_piece = (block(k, M, s, lo, hi), block(n, N, t))
            sent = (N - 1) * message_bytes(a_piece) * (math.prod(a_piece) > 0) \
                + (M - 1) * message_bytes(b_piece) * (math.prod(b_piece) > 0)
            received = sum(message_bytes((block(m, M, s), block(k, N, u, lo, hi)))
                           for u in range(N) if u != t and block(m, M, s) * block(k, N, u, lo, hi)) \
                + sum(message_bytes((block(k, M, r, lo, hi), block(n, N, t)))
                      for r in range(M) if r != s and block(k, M, r, lo, hi) * block(n, N, t))
            assert profile.bytes_sent[pid, step] == sent
            assert profile.bytes_received[pid, step] == received


def product_with_the_operator(world):
    x = DistArray.zeros(world, (4, 4), distribution=("block", "block"))
    x @ x


def test_the_operators_superstep_is_named_for_the_users_line():
    require_nprocs(2)
    profiles = []
    bsp.run(product_with_the_operator, nprocs=2, profile=profiles.append)
    [profile] = profiles
    [step] = [step for step, kind in enumerate(profile.kinds) if kind == superstep_kinds.MATMUL]
    assert profile.sites[0][step].endswith("in product_with_the_operator")
