"""bsp.DistArray against the same computation on a plain numpy array."""

import numpy as np
import pytest

from bsp import DistArray
from bsp.arrays.distarray import owner_of, rows_of
from bsp.testing import spmd

NPROCS = [1, 2, 3, 4]


def global_array(n, trailing=()):
    return np.arange(n * int(np.prod(trailing)), dtype=np.float64).reshape((n, *trailing)) * 1.5 - 7


@pytest.mark.parametrize("n", [0, 1, 5, 12, 13])
@pytest.mark.parametrize("nprocs", [1, 3, 4, 16])
@pytest.mark.parametrize("distribution", ["block", "cyclic"])
def test_every_row_has_exactly_one_owner(n, nprocs, distribution):
    owned = [list(rows_of(n, pid, nprocs, distribution)) for pid in range(nprocs)]
    assert sorted(row for rows in owned for row in rows) == list(range(n))
    for pid, rows in enumerate(owned):
        assert (owner_of(np.array(rows, dtype=np.int64), n, nprocs, distribution) == pid).all()
    if distribution == "block":
        sizes = [len(rows) for rows in owned]
        assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)


@spmd(nprocs=NPROCS)
def test_from_function_gives_each_rank_its_rows(world):
    for distribution in ("block", "cyclic"):
        d = DistArray.from_function(world, (13, 2), lambda rows: np.stack([rows, -rows], axis=1),
                                    dtype=np.int64, distribution=distribution)
        assert d.rows.dtype == np.int64 and d.rows.tolist() == list(rows_of(13, world.pid, world.nprocs, distribution))
        assert np.array_equal(d.rows, d.index(0))
        assert d.local.tolist() == [[row, -row] for row in d.rows]
        assert d.shape == (13, 2) and d.dtype == np.int64 and d.size == 26 and d.ndim == 2


@spmd(nprocs=NPROCS)
def test_scatter_from_the_root_and_gather_back(world):
    expected = global_array(11, (3,))
    for distribution in ("block", "cyclic"):
        d = DistArray.from_root(world, expected if world.pid == world.nprocs - 1 else None,
                                root=world.nprocs - 1, distribution=distribution)
        assert (d.local == expected[list(d.rows)]).all()
        gathered = d.gather(root=0)
        if world.pid == 0:
            assert (gathered == expected).all()
        else:
            assert gathered is None
        assert (d.allgather() == expected).all()


@spmd(nprocs=NPROCS)
def test_redistribution_keeps_every_row(world):
    expected = global_array(14, (2,))
    d = DistArray.from_function(world, (14, 2), lambda rows: expected[rows])
    cyclic = d.redistribute("cyclic")
    assert cyclic.distribution == "cyclic" and (cyclic.local == expected[list(cyclic.rows)]).all()
    back = cyclic.redistribute("block")
    assert (back.local == d.local).all()


@spmd(nprocs=NPROCS)
def test_transpose_under_either_distribution(world):
    for shape in [(7, 5), (2, 9), (5, 1), (0, 3)]:
        expected = global_array(shape[0], shape[1:])
        for distribution in ("block", "cyclic"):
            d = DistArray.from_function(world, shape, lambda rows: expected[rows], distribution=distribution)
            t = d.transpose()
            assert t.shape == shape[::-1] and t.distribution == distribution and t.dtype == d.dtype
            assert (t.local == expected.T[list(t.rows)]).all()
            assert (t.transpose().local == d.local).all()
    one = DistArray.from_function(world, 4, lambda rows: rows * 1.0)
    assert np.array_equal(one.transpose().allgather(), np.arange(4.0))    # numpy: a 1-D transpose is itself


@spmd(nprocs=NPROCS)
def test_halo_exchange(world):
    n = 10
    expected = global_array(n)
    d = DistArray.from_function(world, n, lambda rows: expected[rows])
    lo, hi = (d.rows[0], d.rows[-1] + 1) if len(d.rows) else (0, 0)
    for width in (0, 1, 2, 4):
        for periodic in (False, True):
            rows = np.arange(lo - width, hi + width)
            if periodic:
                wanted = expected[rows % n]
            else:
                wanted = np.where((rows >= 0) & (rows < n), expected[np.clip(rows, 0, n - 1)], -99.0)
            assert (d.halo(width, periodic=periodic, fill=-99.0) == wanted).all(), (width, periodic)


@spmd(nprocs=[3])
def test_halo_reaches_past_a_small_neighbour(world):
    d = DistArray.from_function(world, 4, lambda rows: rows * 1.0)     # blocks of 2, 1, 1 rows
    extended = d.halo(2, periodic=True)
    rows = np.arange(d.rows[0] - 2, d.rows[-1] + 3) % 4
    assert extended.tolist() == rows.tolist()


@spmd(nprocs=[2])
def test_halo_needs_the_block_distribution_and_a_sane_width(world):
    d = DistArray.zeros(world, 6, distribution="cyclic")
    with pytest.raises(ValueError, match="halo needs the block distribution"):
        d.halo(1)
    with pytest.raises(ValueError, match="halo width must be between 0 and the number of rows, 6; got 7"):
        d.redistribute("block").halo(7)


@spmd(nprocs=NPROCS)
def test_ufuncs_work_elementwise(world):
    a = global_array(9, (2,))
    b = a[::-1].copy()
    da = DistArray.from_function(world, (9, 2), lambda rows: a[rows])
    db = DistArray.from_function(world, (9, 2), lambda rows: b[rows])
    for got, want in [(da + db, a + b), (da * 2 - 1, a * 2 - 1), (np.abs(da), np.abs(a)),
                      (np.maximum(da, db), np.maximum(a, b)), (da > db, a > b), (-da, -a),
                      (np.sqrt(np.abs(da)) ** 2, np.sqrt(np.abs(a)) ** 2), (1 / (np.abs(da) + 1), 1 / (np.abs(a) + 1))]:
        assert isinstance(got, DistArray) and got.distribution == "block"
        assert (got.local == want[list(got.rows)]).all()
    out = DistArray.zeros(world, (9, 2))
    np.add(da, db, out=out)
    assert (out.local == (a + b)[list(out.rows)]).all()
    mixed = da + db.redistribute("cyclic")          # the other layout moves to da's (DESIGN.md §2.2)
    assert mixed.distribution == "block" and (mixed.local == (a + b)[list(mixed.rows)]).all()


@spmd(nprocs=NPROCS)
def test_reductions_return_the_global_result_everywhere(world):
    for n in (3, 17):
        x = np.sin(np.arange(n)) * 10
        y = np.cos(np.arange(n))
        for distribution in ("block", "cyclic"):
            dx = DistArray.from_function(world, n, lambda rows: x[rows], distribution=distribution)
            dy = DistArray.from_function(world, n, lambda rows: y[rows], distribution=distribution)
            assert np.isclose(dx.sum(), x.sum()) and np.isclose(dx.mean(), x.mean())
            assert dx.min() == x.min() and dx.max() == x.max()
            assert np.isclose(dx.dot(dy), x @ y)


@spmd(nprocs=[2])
def test_reductions_are_the_same_on_every_rank_to_the_last_bit(world):
    x = DistArray.from_function(world, 1001, lambda rows: np.sin(rows * 0.37))
    assert len(set(world.allgather(float(x.sum())))) == 1


@spmd(nprocs=[4])
def test_more_ranks_than_rows(world):
    d = DistArray.from_function(world, 2, lambda rows: rows + 10.0)
    assert len(d.local) == (1 if world.pid < 2 else 0)
    assert d.sum() == 21 and d.max() == 11 and d.min() == 10
    assert (d.allgather() == [10, 11]).all()


@spmd(nprocs=[2])
def test_a_part_of_the_wrong_shape_is_refused(world):
    with pytest.raises(ValueError, match=r"rank \d holds rows .* its part has shape \(3,\), not \(4,\)"):
        DistArray(world, (6,), np.zeros(4))
    with pytest.raises(ValueError, match=r"distribution must be 'block', 'cyclic', \('block-cyclic', b\), \('block', sizes\) or None, not 'random'"):
        DistArray.zeros(world, 6, distribution="random")
