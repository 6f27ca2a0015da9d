"""Elementwise numpy on DistArrays against numpy on the gathered arrays:
ufuncs (one and two inputs, one and two outputs) on scalars, ndarrays and
DistArrays of random layouts, broadcast by their global shapes (and shapes
that do not broadcast: numpy's ValueError on every rank), with out= and
where= DistArrays of other layouts; np.where, isclose, allclose,
array_equal, array_equiv, astype and copy.  Then the result's layout and
the supersteps an operand of another layout costs.  Many cases run in one
bsp.run."""

import warnings

import numpy as np
import pytest
from hypothesis import strategies as st

from array_cases import checked_in_batches, layouts, model
from bsp import DistArray
from bsp.testing import spmd

DTYPES = [np.float64, np.float32, np.int64, np.int32, np.uint8, np.complex128, np.bool_]
UFUNCS = [np.add, np.subtract, np.multiply, np.true_divide, np.maximum, np.greater, np.logical_and, np.arctan2,
          np.divmod, np.negative, np.sqrt, np.isnan, np.modf, np.left_shift]
SCALARS = st.one_of(st.integers(-3, 300), st.floats(-2, 2, allow_nan=False), st.booleans(),
                    st.sampled_from([np.float32(1.5), np.int8(-2), 1 + 2j]))


def quietly(function, *args, **kwargs):
    """function(...), or the exception it raises, without numpy's warnings."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            return function(*args, **kwargs)
        except Exception as error:      # numpy's exception is what the DistArray must raise
            return error


def same(got, want):
    got, want = np.asarray(got), np.asarray(want)
    assert got.dtype == want.dtype and got.shape == want.shape, (got.dtype, want.dtype, got.shape, want.shape)
    assert np.array_equal(got, want, equal_nan=want.dtype.kind in "fc"), (got, want)


# -- drawing operands ---------------------------------------------------------------

@st.composite
def broadcastable(draw, shape):
    """A shape that broadcasts to `shape`: a suffix of it, some axes 1."""
    count = draw(st.integers(0, len(shape)))
    return tuple(1 if draw(st.booleans()) else n for n in shape[len(shape) - count:])


@st.composite
def operands(draw, nprocs, shape, dtypes=DTYPES, distributed=None):
    """("dist", shape, dtype, seed, (distribution, grid)), ("nd", shape,
    dtype, seed) or ("scalar", value), of a shape that broadcasts to `shape`
    (or, rarely, any shape)."""
    kind = distributed or draw(st.sampled_from(["dist", "nd", "scalar"]))
    if kind == "scalar":
        return ("scalar", draw(SCALARS))
    if draw(st.integers(0, 15)) == 0:
        own = tuple(draw(st.lists(st.integers(0, 4), min_size=1, max_size=3)))
    else:
        own = draw(broadcastable(shape))
    if kind == "dist" and not own:
        own = shape or (1,)
    dtype, seed = draw(st.sampled_from(dtypes)), draw(st.integers(0, 3))
    if kind == "nd":
        return ("nd", own, dtype, seed)
    _, distribution, grid = draw(layouts(nprocs, shape=own))
    return ("dist", own, dtype, seed, (distribution, grid))


def build(world, spec):
    """(the serial value, the operand for the DistArray call)."""
    if spec[0] == "scalar":
        return spec[1], spec[1]
    a = model(spec[1], spec[2], spec[3])
    if spec[0] == "nd":
        return a, a.copy()
    distribution, grid = spec[4]
    return a, DistArray.from_function(world, a.shape, lambda *i: a[i], dtype=a.dtype, distribution=distribution,
                                      grid=grid)


@st.composite
def ufunc_cases(draw, nprocs):
    ufunc = draw(st.sampled_from(UFUNCS))
    shape, _, _ = draw(layouts(nprocs))
    first = draw(st.integers(0, ufunc.nin - 1))                  # which input is surely a DistArray
    inputs = [draw(operands(nprocs, shape, distributed="dist" if i == first else None)) for i in range(ufunc.nin)]
    out = draw(st.sampled_from(["none", "out", "out and where"]))
    layouts_of_out = [draw(layouts(nprocs, shape=shape)) for _ in range(ufunc.nout)]
    where = draw(operands(nprocs, shape, dtypes=[np.bool_], distributed=draw(st.sampled_from(["dist", "nd"]))))
    return ufunc, shape, inputs, out, layouts_of_out, where


def check_ufunc(world, case):
    ufunc, shape, inputs, out, layouts_of_out, where = case
    built = [build(world, spec) for spec in inputs]
    serial, ours = [a for a, _ in built], [d for _, d in built]
    want = quietly(ufunc, *serial)
    if isinstance(want, Exception):
        with pytest.raises(type(want)):
            quietly_raising(ufunc, *ours)
        return
    wants = want if isinstance(want, tuple) else (want,)
    if out == "none":
        got = quietly_raising(ufunc, *ours)
        gots = got if isinstance(got, tuple) else (got,)
        for g, w in zip(gots, wants):
            first = next(d for d in ours if isinstance(d, DistArray))
            if first.shape == w.shape:
                assert g.layout == first.layout
            same(g.allgather(), w)
        return
    result_shape = wants[0].shape
    outs_serial = [model(result_shape, w.dtype, 7) for w in wants]
    outs = [from_model(world, o, *(layout[1:] if result_shape == shape else ("block",)))
            for o, layout in zip(outs_serial, layouts_of_out)]
    kwargs, serial_kwargs = {"out": tuple(outs)}, {"out": tuple(outs_serial)}
    if out == "out and where":
        mask, mask_ours = build(world, where)
        kwargs["where"], serial_kwargs["where"] = mask_ours, mask
    want = quietly(ufunc, *serial, **serial_kwargs)
    if isinstance(want, Exception):
        with pytest.raises(type(want)):
            quietly_raising(ufunc, *ours, **kwargs)
        return
    got = quietly_raising(ufunc, *ours, **kwargs)
    gots = got if isinstance(got, tuple) else (got,)
    for g, o, expected in zip(gots, outs, outs_serial):
        assert g is o
        same(o.allgather(), expected)


def quietly_raising(function, *args, **kwargs):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return function(*args, **kwargs)


def run_ufunc_cases(world, cases):
    for case in cases:
        check_ufunc(world, case)


test_ufuncs_broadcast_global_shapes_with_out_and_where = checked_in_batches(
    lambda nprocs: st.lists(ufunc_cases(nprocs), min_size=6, max_size=12), run_ufunc_cases)


# -- where, comparisons, casts ----------------------------------------------------------

@st.composite
def function_cases(draw, nprocs):
    shape, _, _ = draw(layouts(nprocs))
    name = draw(st.sampled_from(["where", "isclose", "allclose", "array_equal", "array_equiv", "astype", "copy"]))
    count = {"where": 3, "astype": 1, "copy": 1}.get(name, 2)
    first = draw(st.integers(0, count - 1))
    specs = [draw(operands(nprocs, shape, distributed="dist" if i == first or name in ("astype", "copy") else None))
             for i in range(count)]
    return name, specs, draw(st.sampled_from(DTYPES)), draw(st.booleans())


def check_function(world, case):
    name, specs, dtype, flag = case
    built = [build(world, spec) for spec in specs]
    serial, ours = [a for a, _ in built], [d for _, d in built]
    if name == "astype":
        with warnings.catch_warnings():     # complex to real warns, in numpy and in ours alike
            warnings.simplefilter("ignore", np.exceptions.ComplexWarning)
            want, got = serial[0].astype(dtype), (ours[0].astype(dtype) if flag else np.astype(ours[0], dtype))
    elif name == "copy":
        want, got = serial[0].copy(), (ours[0].copy() if flag else np.copy(ours[0]))
        assert got is not ours[0] and got.layout == ours[0].layout
    else:
        kwargs = {"equal_nan": flag} if name in ("isclose", "allclose", "array_equal") else {}
        if name == "array_equal" and flag and serial[0] is not None:
            serial[1] = serial[0]                    # equal arrays, both ways of holding them
            ours[1] = ours[0]
        want = quietly(getattr(np, name), *serial, **kwargs)
        if isinstance(want, Exception):
            with pytest.raises(type(want)):
                quietly_raising(getattr(np, name), *ours, **kwargs)
            return
        got = quietly_raising(getattr(np, name), *ours, **kwargs)
    if isinstance(want, np.ndarray):
        same(got.allgather(), want)
    else:
        assert type(got) is type(want) and got == want, (name, got, want)
    if name == "copy":
        got.local[...] = 0
        same(ours[0].allgather(), want)          # the copy is not the original


def run_function_cases(world, cases):
    for case in cases:
        check_function(world, case)


test_where_comparisons_and_casts = checked_in_batches(
    lambda nprocs: st.lists(function_cases(nprocs), min_size=6, max_size=12), run_function_cases)


# -- layouts and costs ----------------------------------------------------------------

def from_model(world, a, distribution="block", grid=None):
    return DistArray.from_function(world, a.shape, lambda *i: a[i], dtype=a.dtype, distribution=distribution,
                                   grid=grid)


def steps_of(world, operation):
    before = world.superstep
    result = operation()
    return result, world.superstep - before


@spmd(nprocs=[1, 2, 3, 4])
def test_result_layouts_and_the_supersteps_operands_cost(world):
    a, b = model((6, 4)), model((6, 4), seed=3)
    d = from_model(world, a, ("cyclic", "block"))
    e = from_model(world, b, ("block", "cyclic"))
    got, steps = steps_of(world, lambda: d + e)               # e moves to d's layout: one superstep
    assert steps == (world.nprocs > 1) and got.layout == d.layout
    same(got.allgather(), a + b)
    got, steps = steps_of(world, lambda: d * np.arange(4.0) + 1)    # an ndarray: each rank its slice
    assert steps == 0 and got.layout == d.layout
    same(got.allgather(), a * np.arange(4.0) + 1)
    row = from_model(world, a[:1], (None, "block"))           # shape (1, 4): broadcast along axis 0
    got = row - d
    assert got.shape == (6, 4) and got.layout.specs[0] is None
    same(got.allgather(), a[:1] - a)
    got = np.add(np.arange(4.0), d)
    same(got.allgather(), np.arange(4.0) + a)
    three = from_model(world, model((2, 6, 4)), (None, "cyclic", "block"))
    same((d + three).allgather(), a + model((2, 6, 4)))      # the result has more axes than d
    assert (d + three).layout.specs == (None, "cyclic", "block")
    replicated = from_model(world, b, (None, None))
    got, steps = steps_of(world, lambda: d + replicated)      # every rank holds it all: no superstep
    assert steps == 0
    same(got.allgather(), a + b)
    same((replicated + d).allgather(), b + a)


@spmd(nprocs=[1, 2, 3, 4])
def test_out_and_where_of_other_layouts_write_into_out(world):
    a = model((5, 3))
    d = from_model(world, a, ("cyclic", None))
    w = from_model(world, a > 6, ("block", "cyclic"))
    out = from_model(world, np.full((5, 3), -1.0), (None, "block"))
    got = np.multiply(d, 2, out=out, where=w)
    assert got is out
    same(out.allgather(), np.where(a > 6, 2 * a, -1.0))
    d += 1
    same(d.allgather(), a + 1)
    q, r = np.divmod(d, 2.0, out=(None, from_model(world, np.zeros((5, 3)))))
    same(q.allgather(), np.divmod(a + 1, 2.0)[0])
    same(r.allgather(), np.divmod(a + 1, 2.0)[1])
