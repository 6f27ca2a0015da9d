"""A @ B, np.matmul, np.dot and np.vdot on DistArrays (and a DistArray with
an ndarray, either side) against numpy on the gathered arrays: every number
of axes numpy allows, batch axes broadcast, empty axes, random layouts,
grids and nprocs.  The values are small integers, so every dtype's answer
is exact whatever the order of the sums, and must equal numpy's."""


import numpy as np
import pytest
from hypothesis import strategies as st

from array_cases import checked_in_batches, layouts
from bsp import DistArray
from bsp.testing import spmd

DTYPES = [np.int64, np.float64, np.complex128, np.int32, np.bool_]
CALLS = {"@": lambda a, b: a @ b, "matmul": np.matmul, "dot": np.dot, "vdot": np.vdot}


def values(shape, dtype, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-3, 4, shape)
    if np.dtype(dtype).kind == "c":
        a = a + 1j * rng.integers(-2, 3, shape)
    return a.astype(dtype)


def operand(world, a, layout):
    """a as a DistArray of `layout`, or itself (an ndarray) when layout is None."""
    if layout is None:
        return a
    shape, distribution, grid = layout
    return DistArray.from_function(world, shape, lambda *i: a[i], dtype=a.dtype, distribution=distribution, grid=grid)


def check_product(world, call, a_case, b_case, dtype, seed):
    (a_shape, a_layout), (b_shape, b_layout) = a_case, b_case
    a, b = values(a_shape, dtype, seed), values(b_shape, dtype, seed + 1)
    want = CALLS[call](a, b)
    got = CALLS[call](operand(world, a, a_layout), operand(world, b, b_layout))
    if np.ndim(want) == 0:
        assert isinstance(got, np.generic) and got.dtype == want.dtype and got == want, (got, want)
        return
    assert isinstance(got, DistArray), type(got)
    gathered = got.allgather()
    assert gathered.dtype == want.dtype and gathered.shape == want.shape and np.array_equal(gathered, want), \
        (call, a_shape, b_shape, a_layout, b_layout)


def run_cases(world, cases):
    for case in cases:
        check_product(world, *case)


@st.composite
def matmul_shapes(draw):
    """Operand shapes numpy's matmul accepts: 1 to 3 axes, batch axes that
    broadcast (1s, and fewer axes on one side)."""
    m, k, n = (draw(st.integers(0, 4)) for _ in range(3))
    a_ndim, b_ndim = draw(st.integers(1, 3)), draw(st.integers(1, 3))
    batch = [draw(st.integers(0, 3)) for _ in range(max(a_ndim, b_ndim) - 2)]

    def batch_of(ndim):
        own = batch[len(batch) - (ndim - 2):] if ndim > 2 else []
        return tuple(1 if draw(st.booleans()) else extent for extent in own)
    a_shape = (k,) if a_ndim == 1 else batch_of(a_ndim) + (m, k)
    b_shape = (k,) if b_ndim == 1 else batch_of(b_ndim) + (k, n)
    return a_shape, b_shape


@st.composite
def dot_shapes(draw):
    """np.dot's: a's last axis against b's second to last (its only, for a vector)."""
    k = draw(st.integers(0, 4))
    a_shape = tuple(draw(st.lists(st.integers(0, 3), max_size=2))) + (k,)
    b_ndim = draw(st.integers(1, 3))
    b_shape = (k,) if b_ndim == 1 else tuple(draw(st.lists(st.integers(0, 3), min_size=b_ndim - 2,
                                                            max_size=b_ndim - 2))) + (k, draw(st.integers(0, 3)))
    return a_shape, b_shape


@st.composite
def vdot_shapes(draw):
    """Two shapes of one size: the same, reversed, or flattened."""
    a_shape = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    size = int(np.prod(a_shape))
    return a_shape, draw(st.sampled_from([a_shape, a_shape[::-1], (size,)]))


@st.composite
def batches(draw, nprocs):
    cases = []
    for _ in range(draw(st.integers(4, 8))):
        call = draw(st.sampled_from(sorted(CALLS)))
        shapes = {"@": matmul_shapes, "matmul": matmul_shapes, "dot": dot_shapes, "vdot": vdot_shapes}[call]
        a_shape, b_shape = draw(shapes())
        distributed = draw(st.sampled_from(["both", "a", "b"]))
        a_layout = draw(layouts(nprocs, shape=a_shape)) if distributed != "b" else None
        b_layout = draw(layouts(nprocs, shape=b_shape)) if distributed != "a" else None
        cases.append((call, (a_shape, a_layout), (b_shape, b_layout), draw(st.sampled_from(DTYPES)),
                      draw(st.integers(0, 2**16))))
    return cases


test_products_agree_with_numpy = checked_in_batches(batches, run_cases)


@spmd(nprocs=[1, 2, 4])
def test_result_layouts_and_supersteps(world):
    a = DistArray.from_function(world, (6, 5), lambda i, j: i + j, distribution=("block", "block"))
    b = DistArray.from_function(world, (5, 4), lambda i, j: i - j, distribution=("cyclic", "block"))
    v = DistArray.from_function(world, 5, lambda i: i * 1.0, distribution="cyclic")
    whole_a, whole_b = a.allgather(), b.allgather()
    c = a @ b                                       # SUMMA, b moved to a's grid first
    assert c.layout.specs == ("block", "block") and c.grid == a.grid
    assert np.array_equal(c.allgather(), whole_a @ whole_b)
    rows = a.redistribute(("block", None))
    before = world.superstep
    product = rows @ whole_b
    assert world.superstep == before + 1            # a's rows, here already: the ndarray is sliced, never sent
    assert product.layout.specs == ("block", None) and np.array_equal(product.allgather(), whole_a @ whole_b)
    tall = DistArray.from_function(world, (40, 3), lambda i, j: (i * j) % 5 - 2.0, distribution=("cyclic", None))
    wide = DistArray.from_function(world, (3, 40), lambda i, j: (i + j) % 3 - 1.0, distribution=(None, "block"))
    before = world.superstep
    small = wide @ tall                             # partial products over k, added up by their owners
    assert world.superstep == before + 3 and small.grid == wide.grid
    assert np.array_equal(small.allgather(), wide.allgather() @ tall.allgather())
    mv = a @ v
    assert mv.layout.specs == ("block",) and np.array_equal(mv.allgather(), whole_a @ np.arange(5.0))
    before = world.superstep
    inner = v @ v
    assert isinstance(inner, np.float64) and inner == 30.0 and world.superstep == before + 1
    assert np.vdot(v, v.redistribute("block")) == 30.0


@spmd(nprocs=[1, 3])
def test_errors_are_numpys_with_global_shapes(world):
    a = DistArray.zeros(world, (4, 5), distribution=("cyclic", "block"))
    v = DistArray.zeros(world, 4)
    with pytest.raises(ValueError, match=r"mismatch in its core dimension .*global shapes \(4, 5\) and \(4, 5\)"):
        a @ a
    with pytest.raises(ValueError, match=r"global shapes \(4, 5\) and \(3, 2, 5\)"):
        np.matmul(a, np.zeros((3, 2, 5)))
    with pytest.raises(ValueError, match="does not have enough dimensions"):
        np.matmul(a, 2.0)
    with pytest.raises(ValueError, match=r"not aligned"):
        np.dot(a, v)
    with pytest.raises(ValueError, match=r"global shapes \(4, 5\) and \(4,\)"):
        np.vdot(a, v)
    with pytest.raises(TypeError, match="out"):
        np.matmul(v, v, out=np.zeros(()))
    with pytest.raises(TypeError, match="out"):
        np.dot(a, np.zeros((5, 4)), out=np.zeros((4, 4)))
    with pytest.raises(TypeError, match="panels"):
        a.matmul(np.zeros((5, 2)), panels=2)
    with pytest.raises(TypeError):
        a @ np.array(["x"] * 5)
    assert world.superstep == 0
    assert np.array_equal(np.dot(a, 2.0).allgather(), np.zeros((4, 5)))
