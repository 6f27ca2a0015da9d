"""A DistArray speaks numpy's protocols (DESIGN.md §2.2): numpy functions
answer as numpy on the gathered array or raise TypeError naming the
function, never a result computed on the DistArray as an opaque object;
np.asarray refuses; ufunc methods and generalized ufuncs that are not
implemented raise TypeError naming them; errors are numpy's types on every
rank; profiles and mismatch messages name the user's line.  The issue's
four defects are the first tests."""

import re

import numpy as np
import pytest

import bsp
from bsp import DistArray
from bsp.arrays import superstep_kinds
from bsp.testing import assert_ranks_raise, require_nprocs, spmd

AxisError = getattr(np, "exceptions", np).AxisError


def six(world, distribution="cyclic"):
    return DistArray.from_function(world, 6, lambda i: np.sin(i) * 10, distribution=distribution)


# -- the defects --------------------------------------------------------------

@spmd(nprocs=[1, 2, 3, 4])
def test_argmax_array_equiv_and_cumsum_answer_as_numpy(world):
    a = np.sin(np.arange(6)) * 10
    d = six(world)
    assert np.argmax(d) == np.argmax(a) and isinstance(np.argmax(d), np.intp)
    assert np.array_equiv(d, d + 1) is False and np.array_equiv(d, d) is True
    assert np.allclose(np.cumsum(d).allgather(), np.cumsum(a), rtol=1e-14, atol=1e-14)


def add_a_short_array(world):
    six(world) + np.arange(3.0)


@pytest.mark.parametrize("nprocs", [1, 2, 3, 4])
def test_an_ndarray_broadcasts_against_the_global_shape_on_every_rank(nprocs):
    require_nprocs(nprocs)
    assert_ranks_raise(add_a_short_array, nprocs=nprocs, ranks=range(nprocs), exception=ValueError,
                       match=re.escape("operands could not be broadcast together with shapes (6,) (3,)"))


@spmd(nprocs=[1, 2, 3, 4])
def test_an_ndarray_of_the_global_length_adds_elementwise(world):
    a = np.sin(np.arange(6)) * 10
    for distribution in ("cyclic", "block", ("block-cyclic", 4)):
        assert np.array_equal((six(world, distribution) + np.arange(6.0)).allgather(), a + np.arange(6.0))
        assert np.array_equal((np.arange(6.0) - six(world, distribution)).allgather(), np.arange(6.0) - a)


@spmd(nprocs=[1, 2, 3, 4])
def test_add_into_itself_where_a_distarray_mask_says(world):
    a = np.sin(np.arange(6)) * 10
    d = six(world)
    w = six(world, "block") > 0
    np.add(d, d, out=d, where=w)
    assert np.array_equal(d.allgather(), np.where(a > 0, 2 * a, a))
    e = six(world)
    np.add(e, e, out=(e,), where=a > 0)                   # an ndarray mask, out= as numpy passes it
    assert np.array_equal(e.allgather(), d.allgather())


# -- what numpy may not do with a DistArray ----------------------------------------------

@spmd(nprocs=[1, 2, 4])
def test_asarray_and_unregistered_functions_raise_typeerror_naming_them(world):
    d = six(world)
    for convert in (np.asarray, np.array, np.ascontiguousarray):
        with pytest.raises(TypeError, match=r"d\.allgather\(\).*d\.local"):
            convert(d)
    for function, name in [(np.median, "median"), (np.nansum, "nansum"), (np.round, "round"),
                           (np.clip, "clip"), (np.nonzero, "nonzero"), (np.diff, "diff")]:
        with pytest.raises(TypeError, match=rf"numpy\.{name}\b.*not supported"):
            function(d) if function is not np.clip else function(d, 0, 1)
    with pytest.raises(TypeError, match="nonzero"):
        np.where(d > 0)
    with pytest.raises(TypeError, match=r"out= .* must be a DistArray"):
        np.add(d, 1, out=np.zeros(6))
    with pytest.raises(TypeError, match=r"numpy\.add\.outer"):
        np.add.outer(d, d)
    if hasattr(np, "vecdot"):
        with pytest.raises(TypeError, match=r"numpy\.vecdot .*generalized ufunc"):
            np.vecdot(d, d)


@spmd(nprocs=[1, 2, 3])
def test_truth_length_and_iteration(world):
    one = DistArray.from_function(world, (1, 1), lambda i, j: i + j + 2.0, distribution=("block", None))
    zero = DistArray.zeros(world, 1)
    assert bool(one) is True and bool(zero) is False and (True if one else False)
    for array in (six(world), DistArray.zeros(world, (0, 3))):
        with pytest.raises(ValueError, match="ambiguous"):
            bool(array)
    assert len(six(world)) == 6 and len(DistArray.zeros(world, (0, 3))) == 0
    with pytest.raises(TypeError, match="iterating"):
        iter(six(world))
    with pytest.raises(TypeError, match="iterating"):
        list(six(world))


def bad_axis(world):
    np.sum(DistArray.zeros(world, (4, 3), distribution=("block", None)), axis=2)


def empty_min(world):
    DistArray.zeros(world, (0, 3)).min(axis=0)


@pytest.mark.parametrize("program, exception", [(bad_axis, AxisError), (empty_min, ValueError)])
def test_argument_errors_are_numpys_on_every_rank(program, exception):
    require_nprocs(3)
    assert_ranks_raise(program, nprocs=3, ranks=range(3), exception=exception)


# -- call sites and kinds ---------------------------------------------------------------------

def operate(world):
    d = DistArray.zeros(world, (8, 4), distribution=("cyclic", None))
    e = DistArray.zeros(world, (8, 4), distribution=("block", None))
    world.sync()
    total = d + e
    total.sum(axis=0)
    np.cumsum(total, axis=0)


def test_profiles_name_the_users_line_and_each_operation_its_kind():
    require_nprocs(2)
    profiles = []
    bsp.run(operate, nprocs=2, profile=profiles.append)
    [profile] = profiles
    kinds = list(profile.kinds)
    names = [superstep_kinds.ELEMENTWISE, superstep_kinds.REDUCTION, superstep_kinds.SCAN_TO_BLOCK,
             superstep_kinds.SCAN]
    steps = [kinds.index(kind) for kind in names]
    assert steps == sorted(steps)
    for step, line in zip(steps, ["total = d + e", "total.sum(axis=0)", "np.cumsum(total, axis=0)",
                                  "np.cumsum(total, axis=0)"]):
        site = profile.sites[0][step]
        assert "test_numpy_protocol.py" in site and site.endswith("in operate"), site
        number = int(site.rsplit(":", 1)[1].split()[0])
        assert line in open(__file__).read().splitlines()[number - 1]


def diverge(world):
    d = DistArray.zeros(world, (4, 4), distribution=("block", "block"))
    if world.pid == 0:
        d.sum(axis=0)
    else:
        d.cumsum(axis=0)


def test_a_reduction_against_a_scan_is_a_mismatch_naming_both():
    require_nprocs(2)
    with pytest.raises(bsp.SyncMismatchError, match=r"rank 0: reduction at .*test_numpy_protocol.py:\d+ in diverge\n"
                                                r"  rank 1: scan at "):
        bsp.run(diverge, nprocs=2)
