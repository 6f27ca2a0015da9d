"""Processor grids: coordinates row-major in pid, rank_of and coords_of
inverse to each other, along(axis) the ranks that differ only in that
coordinate, for every shape of 1, 2 and 3 axes (1 x p and p x 1 included);
dims_create; bad shapes."""

import itertools
import math

import pytest

import bsp
from bsp.objects.grid import dims_create
from bsp.testing import spmd


def shapes(nprocs, most_axes=3):
    """Every grid shape of 1..most_axes axes for nprocs ranks."""
    return [shape for ndim in range(1, most_axes + 1) for shape in factorizations(nprocs, ndim)]


def row_major(shape):
    """Every pid's coordinates, in pid order, the last axis fastest."""
    return list(itertools.product(*(range(n) for n in shape)))


@spmd(nprocs=[1, 2, 3, 4, 6, 8])
def test_every_grid_shape_has_row_major_coords_and_consistent_groups(world):
    for shape in shapes(world.nprocs):
        grid = world.grid(shape)
        everyone = row_major(shape)
        assert grid.shape == shape and grid.ndim == len(shape)
        assert grid.coords == everyone[world.pid]
        assert [grid.rank_of(c) for c in everyone] == list(range(world.nprocs))
        assert [grid.coords_of(pid) for pid in range(world.nprocs)] == everyone
        for axis in range(grid.ndim):
            group = grid.along(axis)
            assert group is grid.along(axis) and group is grid.along(axis - grid.ndim)
            members = [pid for pid, c in enumerate(everyone)
                       if all(c[a] == grid.coords[a] for a in range(grid.ndim) if a != axis)]
            assert group.ranks == tuple(sorted(members, key=lambda pid: everyone[pid][axis]))
            assert group.pid == grid.coords[axis] and group.nprocs == shape[axis]
            # a collective along the axis reaches exactly those ranks, in that order
            assert group.allgather(grid.coords) == [everyone[pid] for pid in group.ranks]


@spmd(nprocs=[1, 2, 4, 6])
def test_rows_and_columns_of_2d_grids_including_1_by_p_and_p_by_1(world):
    p = world.nprocs
    for m in [m for m in range(1, p + 1) if p % m == 0]:
        n = p // m
        grid = world.grid((m, n))
        s, t = grid.coords
        assert (s, t) == divmod(world.pid, n)
        assert grid.row is grid.along(1) and grid.column is grid.along(0)
        assert grid.row.ranks == tuple(s * n + u for u in range(n)) and grid.row.pid == t
        assert grid.column.ranks == tuple(r * n + t for r in range(m)) and grid.column.pid == s
        # a row broadcast from the diagonal-ish root t = s % n, then a column sum
        assert grid.row.broadcast((s, t), root=s % n) == (s, s % n)
        assert grid.column.allreduce(world.pid) == sum(r * n + t for r in range(m))


@spmd(nprocs=[2])
def test_a_grid_costs_no_superstep_but_every_rank_must_make_it(world):
    world.grid((2, 1))
    assert world.superstep == 0


def test_a_rank_that_makes_a_grid_the_others_do_not_is_a_mismatch():
    from test_groups import mismatch_sites

    def program(world):
        world.grid((1, world.nprocs) if world.pid == 0 else (world.nprocs, 1))
        world.sync()

    sites = mismatch_sites(program, 2)
    assert "having created 1 data objects (grid (1, 2))" in sites[0]
    assert "having created 1 data objects (grid (2, 1))" in sites[1]


@spmd(nprocs=[2])
def test_bad_grids_raise_at_the_call_naming_the_values(world):
    with pytest.raises(ValueError, match=r"grid shape \(3, 1\) has 3 places for 2 ranks: .* nprocs = 2"):
        world.grid((3, 1))
    with pytest.raises(ValueError, match=r"grid shape must be one or more positive integers, not \(2, 0\)"):
        world.grid((2, 0))
    with pytest.raises(TypeError, match=r"grid shape must be a tuple of positive integers, not '2x1'"):
        world.grid("2x1")
    grid = world.grid(2)
    assert grid.shape == (2,)
    with pytest.raises(ValueError, match=r"coords \(2,\) are not in the grid \(2,\)"):
        grid.rank_of((2,))
    with pytest.raises(ValueError, match=r"coords \(0, 0\) are not in the grid \(2,\)"):
        grid.rank_of((0, 0))
    with pytest.raises(ValueError, match=r"axis 1 is out of range for the 1-D grid \(2,\)"):
        grid.along(1)
    with pytest.raises(ValueError, match=r"grid.row is defined for 2-D grids; this grid \(2,\) has 1 axes"):
        grid.row
    with pytest.raises(ValueError, match=r"pid 2 is outside the grid \(2,\)"):
        grid.coords_of(2)
    assert world.superstep == 0


def factorizations(n, k):
    """Every ordered k-tuple of positive ints whose product is n."""
    if k == 1:
        return [(n,)]
    return [(d, *rest) for d in range(1, n + 1) if n % d == 0 for rest in factorizations(n // d, k - 1)]


def test_dims_create_is_near_square_like_mpi_dims_create():
    assert dims_create(1, 2) == (1, 1)
    assert dims_create(2, 2) == (2, 1)
    assert dims_create(4, 2) == (2, 2)
    assert dims_create(6, 2) == (3, 2)
    assert dims_create(7, 2) == (7, 1)
    assert dims_create(12, 2) == (4, 3)
    assert dims_create(72, 2) == (9, 8)       # a greedy split of the prime factors gives (12, 6)
    assert dims_create(8, 3) == (2, 2, 2)
    assert dims_create(12, 3) == (3, 2, 2)
    assert dims_create(5, 1) == (5,)
    for nprocs in range(1, 130):
        for ndim in (1, 2, 3, 4):
            shape = dims_create(nprocs, ndim)
            assert len(shape) == ndim and math.prod(shape) == nprocs and list(shape) == sorted(shape, reverse=True)
            best = min(sorted(s, reverse=True) for s in factorizations(nprocs, ndim))
            assert shape == tuple(best)
    with pytest.raises(ValueError, match=r"dims_create's nprocs must be at least 1, got 0"):
        dims_create(0, 2)
    with pytest.raises(TypeError, match=r"dims_create's ndim must be a positive integer, not 'float'"):
        dims_create(4, 2.0)


def test_available_processors_is_the_job_size_under_mpi_else_the_usable_cores(monkeypatch):
    from bsp.launch.cores import usable_cores
    from bsp.launch.bsp_run import max_nprocs
    from bsp.launch.mpi_environment import launched_by_mpi

    if launched_by_mpi():
        assert bsp.available_processors() == max_nprocs()
    else:
        assert bsp.available_processors() == usable_cores()
        monkeypatch.setenv("BSP_BACKEND", "mpi")
        monkeypatch.setenv("PMI_SIZE", "12")
        assert bsp.available_processors() == 12
        monkeypatch.delenv("PMI_SIZE")
        monkeypatch.setenv("OMPI_COMM_WORLD_SIZE", "6")
        assert bsp.available_processors() == 6
