"""Payloads drawn the way real programs make them, for fuzzing the wire.

`payloads()` is a hypothesis strategy of object graphs with

- shared references and cycles (lists, dicts and instances that refer to
  each other, themselves, or their ancestors);
- repeated strings and dict keys (the same key object in many dicts, and
  equal but distinct strings);
- numpy arrays of every kind of dtype (bool, ints, floats, complex,
  datetime64, timedelta64, strings, structured; both byte orders), small
  (pickled in-band) and large (over `bsp.core.wire.INBAND_LIMIT`, sent
  out-of-band), 0-d, views, non-contiguous and Fortran-ordered, object arrays;
- bytes, bytearray, numpy scalars, sets, named tuples;
- objects with `__reduce__` (constructor arguments, state, list items, dict
  items) and with `__getstate__`/`__setstate__`;
- objects only dill can carry (lambdas, closures over parts of the graph),
  interleaved with plain ones.

`payload_sequences()` draws what one rank sends on one channel in one
superstep.  The classes below are module-level so that every rank, and
plain pickle, can find them by name.  Comparing what arrived with what was
sent is `structure.py`'s part.
"""

from __future__ import annotations

import collections
import datetime
import functools
import operator

import numpy as np
from hypothesis import strategies as st

from bsp.core.wire import INBAND_LIMIT

# The same key objects recur in many dicts of one payload (pickle memoizes
# them: a later occurrence is a back-reference to the first).
KEYS = ("key", "name", "value", "id", "data", "next")


class Box:
    """A plain instance: pickled by the default reduce, its state a __dict__."""

    def __init__(self, **attributes):
        self.__dict__.update(attributes)


class Point:
    """`__reduce__` with constructor arguments only."""

    def __init__(self, x, y):
        self.x, self.y = x, y

    def __reduce__(self):
        return Point, (self.x, self.y)


class Bag(list):
    """`__reduce__` with arguments, state and list items (appended after the
    object exists, so they may refer back to it)."""

    def __init__(self, tag=None):
        super().__init__()
        self.tag = tag

    def __reduce__(self):
        return Bag, (self.tag,), {"extra": self.__dict__.get("extra")}, iter(self)


class Table(dict):
    """`__reduce__` with dict items and no arguments."""

    def __reduce__(self):
        return Table, (), None, None, iter(self.items())


class Slotted:
    """__slots__, with __getstate__ and __setstate__."""

    __slots__ = ("left", "right")

    def __init__(self, left=None, right=None):
        self.left, self.right = left, right

    def __getstate__(self):
        return {"left": self.left, "right": self.right}

    def __setstate__(self, state):
        self.left, self.right = state["left"], state["right"]


Pair = collections.namedtuple("Pair", "first second")


def pair(a, b):
    """A non-commutative combining operation for reductions: [a, b]."""
    return [a, b]


def _closure_over(captured):
    """A function only dill can carry, whose closure holds part of the graph."""
    def closure():
        return captured
    return closure


def _adder(amount):
    return lambda x: x + amount


# -- numpy ---------------------------------------------------------------------

STRUCTURED = np.dtype([("a", "<i4"), ("b", ">f8", (2,)), ("c", "S3")])
PADDED = np.dtype([("flag", "?"), ("count", "<i8")], align=True)
DTYPES = ("?", "i1", "<i2", ">i4", "<i8", "u1", ">u2", "<u4", "u8", "<f2", ">f4", "<f8", "g",
          "<c8", ">c16", "M8[ns]", "M8[D]", "<m8[s]", "<U3", "S4", "V5", STRUCTURED, PADDED)

VIEWS = ("whole", "transpose", "stepped", "reversed", "offset", "row", "zero_d", "with_base")


def make_array(dtype, shape, seed, view):
    """An array of `dtype` and `shape` filled from `seed`, or a view of it."""
    dtype = np.dtype(dtype)
    count = int(np.prod(shape))
    rng = np.random.default_rng(seed)
    if dtype.kind == "U":
        base = rng.integers(32, 0xD7FF, count * (dtype.itemsize // 4), dtype="<u4").view(dtype)
    else:
        base = np.frombuffer(rng.bytes(count * dtype.itemsize), dtype).copy()
        if dtype.kind == "b":
            base = base.view("u1") % 2 == 1
    base = base.reshape(shape)
    return _view(base, view)


def _view(base, view):
    if view == "transpose" and base.ndim >= 2:
        return base.T                       # Fortran-ordered
    if view == "stepped" and base.ndim >= 1:
        return base[::2]                    # not contiguous
    if view == "reversed" and base.ndim >= 1:
        return base[::-1]                   # negative strides
    if view == "offset" and base.ndim >= 1:
        return base[1:]                     # contiguous, not at the start of its memory
    if view == "row" and base.ndim >= 2 and len(base):
        return base[0]
    if view == "zero_d" and base.size:
        return base.reshape(-1)[-1:].reshape(())
    if view == "with_base" and base.ndim >= 1:
        return [base, base[1:], base]       # an array with a view of it, and itself again
    return base


def arrays():
    """Small arrays (pickled in-band) and large ones (out-of-band), of every
    dtype, as they are or as views."""
    small = st.lists(st.integers(0, 4), max_size=3).map(tuple)
    large = st.tuples(st.integers(INBAND_LIMIT // 8 + 1, 2 * INBAND_LIMIT), st.integers(1, 2))
    shapes = st.one_of(small, small, large.map(lambda s: (s[0] // s[1], s[1]) if s[1] > 1 else (s[0],)))
    return st.builds(make_array, st.sampled_from(DTYPES), shapes, st.integers(0, 2**32 - 1),
                     st.sampled_from(VIEWS))


def object_array(items):
    array = np.empty(len(items), dtype=object)
    array[:] = items
    return array


def numpy_scalars():
    return st.one_of(st.integers(-2**31, 2**31 - 1).map(np.int32), st.floats().map(np.float64),
                     st.booleans().map(np.bool_), st.complex_numbers(width=64).map(np.complex64),
                     st.integers(-10**6, 10**6).map(lambda n: np.datetime64(n, "s")))


# -- plain values ----------------------------------------------------------------

def _distinct_copy(text):
    """An equal but distinct string: it must arrive distinct too."""
    return "".join(list(text)) if len(text) > 1 else text


def keys():
    return st.one_of(st.sampled_from(KEYS), st.integers(-5, 5), st.text(max_size=4),
                     st.sampled_from(KEYS).map(_distinct_copy))


def hashables():
    return st.one_of(st.integers(), st.sampled_from(KEYS), st.text(max_size=5), st.binary(max_size=5),
                     st.tuples(st.integers(), st.text(max_size=2)))


def leaves():
    return st.one_of(
        st.none(), st.booleans(), st.integers(), st.integers(-2**200, 2**200),
        st.floats(), st.complex_numbers(), st.just(float("nan")), st.just(-0.0),
        st.sampled_from(KEYS), st.sampled_from(KEYS).map(_distinct_copy), st.text(max_size=20),
        st.binary(max_size=20), st.binary(max_size=20).map(bytearray),
        st.binary(min_size=INBAND_LIMIT, max_size=INBAND_LIMIT + 64).map(bytearray),
        st.sets(hashables(), max_size=4), st.frozensets(hashables(), max_size=4),
        st.just(Ellipsis), st.builds(slice, st.integers(-3, 3), st.integers(-3, 3)),
        st.fractions(), st.datetimes(), st.just(datetime.timedelta(days=1, microseconds=3)),
        st.sampled_from([len, operator.add, pair, np.add, Point]),     # travel by name
        numpy_scalars(), arrays(), arrays(),
    )


def _containers(children):
    """One level of the graph over `children`."""
    pairs = st.lists(st.tuples(keys(), children), max_size=4)
    return st.one_of(
        st.lists(children, max_size=5),
        st.lists(children, max_size=4).map(tuple),
        pairs.map(dict),
        pairs.map(lambda items: Box(**{str(k): v for k, v in items})),
        st.builds(Point, children, children),
        st.builds(_bag, hashables(), st.lists(children, max_size=3), children),
        pairs.map(Table),
        st.builds(Slotted, children, children),
        st.builds(Pair, children, children),
        st.lists(children, max_size=4).map(object_array),
        st.builds(_repeat, children, st.integers(2, 3)),
    )


def _needs_dill(children):
    """Objects that only dill can carry, holding parts of the graph."""
    return st.one_of(
        children.map(_closure_over),
        st.integers(-9, 9).map(_adder),
        st.builds(lambda item, function: [item, function, item], children, st.just(lambda x: x * 2)),
    )


def _bag(tag, items, extra):
    bag = Bag(tag)
    bag.extend(items)
    bag.extra = extra
    return bag


def _repeat(child, times):
    """The same object several times in one list: shared, not copied."""
    return [child] * times


LINK_TARGETS = (list, dict, Box, Bag, Table)


def _link(root, links):
    """Add references between the graph's containers: `(i, j)` puts the j-th
    container (in depth-first order) into the i-th, which makes shared
    references, and cycles when j is i or one of its ancestors."""
    targets = _containers_in(root)
    for count, (i, j) in enumerate(links):
        if not targets:
            break
        source, target = targets[i % len(targets)], targets[j % len(targets)]
        key = KEYS[count % len(KEYS)]
        if isinstance(source, list):
            source.append(target)
        elif isinstance(source, dict):
            source[key] = target
        else:
            setattr(source, key, target)
    return root


def _containers_in(root):
    """The link targets reachable from `root`, depth first, each once."""
    found, seen, stack = [], set(), [root]
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if type(obj) in LINK_TARGETS:
            found.append(obj)
        stack.extend(reversed(list(_children(obj))))
    return found


def _children(obj):
    if isinstance(obj, dict):
        yield from obj.values()
    if isinstance(obj, (list, tuple)):
        yield from obj
    if isinstance(obj, np.ndarray) and obj.dtype == object:
        yield from obj.ravel().tolist()
    if isinstance(obj, (Box, Bag)):
        yield from vars(obj).values()
    if isinstance(obj, (Point, Slotted)):
        yield from (obj.x, obj.y) if isinstance(obj, Point) else (obj.left, obj.right)


@functools.lru_cache(maxsize=None)
def payloads(max_leaves: int = 12, dill_share: int = 6):
    """Object graphs of up to about `max_leaves` leaves; about one payload in
    `dill_share` needs dill somewhere inside it."""
    plain = st.recursive(leaves(), _containers, max_leaves=max_leaves)
    with_dill = st.recursive(leaves(), lambda children: st.one_of(_containers(children), _needs_dill(children)),
                             max_leaves=max_leaves)
    tree = st.one_of(*[plain] * (dill_share - 1), with_dill)
    links = st.lists(st.tuples(st.integers(0, 63), st.integers(0, 63)), max_size=4)
    return st.builds(_link, tree, links)


def payload_sequences(max_size: int = 4, **options):
    """What one rank sends on one channel in one superstep: one to `max_size`
    payloads."""
    return st.lists(payloads(**options), min_size=1, max_size=max_size)
