"""Scatters, gathers and combining (`op`) puts of coarrays against a
sequential model: images of random sizes per rank (empty ones too), integer
array indices with repeats and negative entries, several sources per image.
The model: gets read the images as they were at the end of the superstep;
then puts apply in order of source pid, then put order, a plain put
element by element (the last write wins), an `op` put as `np.ufunc.at`.
Both backends run this and must match the model bit for bit."""

import os

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import bsp
from bsp.testing import require_nprocs

OPS = {"add": np.add, "maximum": np.maximum, "multiply": np.multiply, "subtract": np.subtract}
EXAMPLES = int(os.environ.get("BSP_PROPERTY_EXAMPLES", 40))


def operation(sizes, dtype):
    value = st.integers(-50, 50) if dtype == "int64" else st.floats(-1e3, 1e3, allow_nan=False, width=64)

    def on(pid):
        size = sizes[pid]
        entry = st.integers(-size, size - 1) if size else st.nothing()
        indices = st.lists(entry, max_size=6 if size else 0)
        scatter = st.tuples(st.sampled_from(["scatter", "elements"]), indices).flatmap(lambda kind_idx: st.tuples(
            st.just(kind_idx[0]), st.just(pid), st.just(kind_idx[1]),
            st.lists(value, min_size=len(kind_idx[1]), max_size=len(kind_idx[1]))))
        combine = indices.flatmap(lambda idx: st.tuples(
            st.sampled_from(sorted(OPS)), st.just(pid), st.just(idx),
            st.lists(value, min_size=len(idx), max_size=len(idx))))
        gather = st.tuples(st.just("gather"), st.just(pid), indices)
        return st.one_of(scatter, combine, gather)
    return st.integers(0, len(sizes) - 1).flatmap(on)


def programs():
    def for_sizes(nprocs, dtype):
        sizes = st.lists(st.integers(0, 5), min_size=nprocs, max_size=nprocs)
        def with_sizes(sizes):
            superstep = st.lists(st.lists(operation(sizes, dtype), max_size=5), min_size=nprocs, max_size=nprocs)
            return st.tuples(st.just(sizes), st.just(dtype), st.booleans(), st.lists(superstep, min_size=1, max_size=2))
        return sizes.flatmap(with_sizes)
    return st.tuples(st.integers(1, 4), st.sampled_from(["int64", "float64"])).flatmap(lambda a: for_sizes(*a))


def start(pid, sizes, dtype):
    return np.arange(sizes[pid], dtype=dtype) * (pid + 1)


def execute(world, sizes, dtype, early, plan):
    """Carry out this rank's operations; per superstep, the image and what
    the gathers returned.  `early`: the first superstep's operations come
    before the shapes are known (checked at its sync)."""
    xs = world.coarray(start(world.pid, sizes, dtype))
    if not early:
        world.sync()
    log = []
    for operations in plan:
        futures = []
        for kind, pid, index, *values in operations[world.pid]:
            if kind == "gather":
                futures.append(xs.get(pid, np.array(index, np.int64)))
            elif kind == "scatter":
                xs.put(np.array(values[0], dtype), pid, np.array(index, np.int64))
            elif kind == "elements":                 # element puts, one by one
                for i, v in zip(index, values[0]):
                    xs[pid, i] = v
            else:
                xs.put(np.array(values[0], dtype), pid, np.array(index, np.int64), op=OPS[kind])
        world.sync()
        log.append((xs.local.tobytes(), [future.value.tobytes() for future in futures]))
    return log


def model(sizes, dtype, plan):
    nprocs = len(sizes)
    images = [start(pid, sizes, dtype) for pid in range(nprocs)]
    logs = [[] for _ in range(nprocs)]
    for operations in plan:
        gathered = [[images[pid][np.array(index, np.int64)].copy() for kind, pid, index, *_ in operations[rank]
                     if kind == "gather"] for rank in range(nprocs)]
        for source in range(nprocs):
            for kind, pid, index, *values in operations[source]:
                if kind in ("scatter", "elements"):
                    for i, v in zip(index, np.array(values[0], dtype)):
                        images[pid][i] = v
                elif kind != "gather":
                    OPS[kind].at(images[pid], np.array(index, np.int64), np.array(values[0], dtype))
        for rank in range(nprocs):
            logs[rank].append((images[rank].tobytes(), [got.tobytes() for got in gathered[rank]]))
    return logs


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(programs())
def test_scatters_gathers_and_op_puts_match_the_sequential_model(program):
    sizes, dtype, early, plan = program
    require_nprocs(len(sizes))
    assert bsp.run(execute, sizes, dtype, early, plan, nprocs=len(sizes)) == model(sizes, dtype, plan)


def two_dimensional(world):
    xs = world.coarray((3, 4), dtype=np.int64)
    world.sync()
    right = (world.pid + 1) % world.nprocs
    rows, columns = np.array([[0], [2]]), np.array([1, 3, -1])      # broadcast to (2, 3)
    xs.put(np.arange(6).reshape(2, 3) + 10 * world.pid, right, (rows, columns))
    xs.put(1, right, (np.array([1, 1, 1]), 0), op=np.add)        # an int among arrays; repeated
    corner = xs.get(right, (rows, columns))
    world.sync()
    return xs.local.tolist(), corner.value.shape


def test_integer_arrays_on_two_axes_broadcast_together():
    require_nprocs(2)
    (image, shape), _ = bsp.run(two_dimensional, nprocs=2)
    assert image == [[0, 10, 0, 12], [3, 0, 0, 0], [0, 13, 0, 15]]     # rank 0's, written by rank 1
    assert shape == (2, 3)
