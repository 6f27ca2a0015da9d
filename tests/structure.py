"""Comparing what arrived with what was sent, structure and identity.

`round_trip(x)` is what a message of `x` must arrive as: its own pickle
round trip (dill's, for what pickle refuses).  `assert_same(received,
expected)` walks both graphs together and fails, naming the path, unless
they are equal *and* have the same identity structure: an object reached
twice in one must be the same object reached twice in the other, and two
distinct objects must stay distinct.  Compare a whole superstep's arrivals
with the independent round trips of what was sent, in one call: then a
shared object stays shared within a payload, a cycle stays a cycle, and
nothing is shared between payloads.  Floats compare bit for bit (NaN equals
itself, -0.0 differs from 0.0), arrays by dtype, shape, memory order and
bytes.
"""

from __future__ import annotations

import functools
import io
import pickle
import struct
import sys
import types
from typing import Any, Iterable

import numpy as np


def round_trip(obj: Any) -> Any:
    """`obj` through its own pickle, or dill for what pickle refuses (with
    numpy arrays pickled as pickle pickles them)."""
    try:
        data = pickle.dumps(obj, 5)
    except (pickle.PicklingError, TypeError, AttributeError):
        import dill
        file = io.BytesIO()
        _arrays_as_pickle_does()(file, 5).dump(obj)
        return dill.loads(file.getvalue())
    return pickle.loads(data)


@functools.lru_cache(maxsize=None)
def _arrays_as_pickle_does():
    """dill's pickler, but numpy arrays as pickle's protocol 5 has them:
    numpy's legacy reduce, dill's, makes their byte order native."""
    import dill

    def in_band(part):
        if not isinstance(part, pickle.PickleBuffer):
            return part
        view = memoryview(part)
        return bytes(view) if view.readonly else bytearray(view)

    class Pickler(dill.Pickler):
        def reducer_override(self, obj):
            if type(obj) is not np.ndarray:
                return NotImplemented
            rebuild, args, *rest = obj.__reduce_ex__(5)
            return (rebuild, tuple(map(in_band, args)), *rest)
    return Pickler


def by_name(obj: Any) -> bool:
    """Whether pickle carries `obj` by name (a module-level function or
    class, a ufunc): the receiver gets the very same object."""
    if isinstance(obj, (type, np.ufunc, types.BuiltinFunctionType)):
        return True
    if isinstance(obj, types.FunctionType):
        module = sys.modules.get(obj.__module__)
        return getattr(module, obj.__qualname__, None) is obj
    return False


def tracked(obj: Any) -> bool:
    """Whether pickle keeps `obj`'s identity (it memoizes it), and the
    receiver could not get the same object by chance (one-byte bytes and the
    empty tuple are cached by the interpreter).  Not strings: unpickling
    interns the attribute names of instances, so whether two equal strings
    are one object depends on what the interpreter unpickled before."""
    if isinstance(obj, (bytes, tuple, frozenset)):
        return len(obj) > 1
    return not (obj is None or obj is Ellipsis or isinstance(obj, (str, bool, int, float, complex, np.generic))
                or by_name(obj))


def mutable(obj: Any) -> bool:
    """Whether a change to `obj` would show through every reference to it."""
    return tracked(obj) and not isinstance(obj, (bytes, tuple, frozenset, slice))


class Mismatch(AssertionError):
    pass


def assert_same(received: Any, expected: Any, identity: bool = True) -> None:
    """Raise Mismatch, naming where, unless `received` and `expected` are
    equal graphs of the same identity structure (see the module's doc).
    `identity=False`: equal graphs, sharing aside (cycles are followed once)."""
    _Walk(identity).compare(received, expected, "arrived")


class _Walk:
    def __init__(self, identity: bool):
        self.identity = identity
        self.pairs: dict[int, Any] = {}      # id in received -> object in expected
        self.back: dict[int, Any] = {}       # id in expected -> object in received
        self.seen: set[tuple[int, int]] = set()     # pairs compared, without identity

    def compare(self, a: Any, b: Any, path: str) -> None:
        if type(a) is not type(b):
            raise Mismatch(f"{path}: {type(a).__name__} arrived, {type(b).__name__} expected: {a!r:.200}")
        if not self.identity and tracked(a):
            if (id(a), id(b)) in self.seen:
                return
            self.seen.add((id(a), id(b)))
        elif tracked(a) or tracked(b):
            if id(a) in self.pairs or id(b) in self.back:
                if self.pairs.get(id(a)) is not b or self.back.get(id(b)) is not a:
                    raise Mismatch(f"{path}: identity differs (an object shared in one graph is not "
                                   f"in the other): {a!r:.200}")
                return
            self.pairs[id(a)], self.back[id(b)] = b, a
        elif by_name(a) or by_name(b):
            if a is not b:
                raise Mismatch(f"{path}: {a!r} arrived, {b!r} expected")
            return
        self._contents(a, b, path)

    def _contents(self, a: Any, b: Any, path: str) -> None:
        if isinstance(a, np.ndarray):
            return self._arrays(a, b, path)
        if isinstance(a, np.generic):
            if a.dtype != b.dtype or a.tobytes() != b.tobytes():
                raise Mismatch(f"{path}: {a!r} arrived, {b!r} expected")
            return
        if isinstance(a, float):
            return self._equal(struct.pack("<d", a), struct.pack("<d", b), path, a, b)
        if isinstance(a, complex):
            return self._equal(struct.pack("<dd", a.real, a.imag), struct.pack("<dd", b.real, b.imag), path, a, b)
        if isinstance(a, types.FunctionType):
            return self._functions(a, b, path)
        if isinstance(a, dict):
            self._sequences(list(a.items()), list(b.items()), path, "item")
        if isinstance(a, (list, tuple)):
            self._sequences(a, b, path, "")
        if isinstance(a, (set, frozenset)):
            self._equal(a, b, path, a, b)       # of hashable leaves: plain equality
        if hasattr(a, "__dict__") and not isinstance(a, type):
            self.compare(vars(a), vars(b), path + ".__dict__")
        slots = getattr(type(a), "__slots__", ())
        if slots and not isinstance(a, (list, tuple, dict)):
            self._sequences([getattr(a, s) for s in slots], [getattr(b, s) for s in slots], path, "slot")
        if not isinstance(a, (dict, list, tuple, set, frozenset)) and not hasattr(a, "__dict__") and not slots:
            self._equal(a, b, path, a, b)

    def _sequences(self, a: Iterable, b: Iterable, path: str, what: str) -> None:
        a, b = list(a), list(b)
        if len(a) != len(b):
            raise Mismatch(f"{path}: {len(a)} elements arrived, {len(b)} expected")
        for i, (x, y) in enumerate(zip(a, b)):
            self.compare(x, y, f"{path}[{what}{i}]")

    def _arrays(self, a: np.ndarray, b: np.ndarray, path: str) -> None:
        if (a.dtype, a.shape) != (b.dtype, b.shape):
            raise Mismatch(f"{path}: array {a.dtype} {a.shape} arrived, {b.dtype} {b.shape} expected")
        if (a.flags.c_contiguous, a.flags.f_contiguous) != (b.flags.c_contiguous, b.flags.f_contiguous):
            raise Mismatch(f"{path}: memory order differs")
        if a.dtype.hasobject:
            self._sequences(a.ravel(order="K").tolist(), b.ravel(order="K").tolist(), path, "element")
        elif not _same_data(a, b):
            raise Mismatch(f"{path}: array data differs")

    def _functions(self, a: types.FunctionType, b: types.FunctionType, path: str) -> None:
        if a.__code__ != b.__code__ or a.__globals__ is not b.__globals__:
            raise Mismatch(f"{path}: function {a.__qualname__} differs from {b.__qualname__}")
        cells = [cell.cell_contents for cell in a.__closure__ or ()]
        expected = [cell.cell_contents for cell in b.__closure__ or ()]
        self._sequences(cells, expected, path + ".__closure__", "cell")
        self.compare(a.__defaults__, b.__defaults__, path + ".__defaults__")

    @staticmethod
    def _equal(x: Any, y: Any, path: str, a: Any, b: Any) -> None:
        if x != y:
            raise Mismatch(f"{path}: {a!r:.200} arrived, {b!r:.200} expected")


def _same_data(a: np.ndarray, b: np.ndarray) -> bool:
    """Bit for bit, field by field: the padding between the fields of an
    aligned structured dtype is not data (a copy need not keep it)."""
    if a.dtype.names:
        return all(_same_data(a[name], b[name]) for name in a.dtype.names)
    return a.tobytes() == b.tobytes()


def mutable_objects(root: Any) -> dict[int, Any]:
    """Every mutable object reachable from `root`, by id."""
    found: dict[int, Any] = {}
    stack = [root]
    seen: set[int] = set()
    while stack:
        obj = stack.pop()
        if id(obj) in seen:
            continue
        seen.add(id(obj))
        if mutable(obj):
            found[id(obj)] = obj
        stack.extend(_references(obj))
    return found


def _references(obj: Any) -> list:
    if isinstance(obj, dict):
        return [*obj.keys(), *obj.values(), *_attributes(obj)]
    if isinstance(obj, (list, tuple, set, frozenset)):
        return [*obj, *_attributes(obj)]
    if isinstance(obj, np.ndarray):
        return obj.ravel().tolist() if obj.dtype.hasobject else []
    if isinstance(obj, types.FunctionType):
        return [cell.cell_contents for cell in obj.__closure__ or ()]
    return _attributes(obj)


def _attributes(obj: Any) -> list:
    values = list(vars(obj).values()) if hasattr(obj, "__dict__") and not by_name(obj) else []
    slots = getattr(type(obj), "__slots__", ())
    if slots and not isinstance(obj, (list, tuple, dict)):
        values += [getattr(obj, name) for name in slots]
    return values


def assert_private(received: Any, mine: dict[int, Any]) -> None:
    """Raise Mismatch if anything mutable in `received` is one of `mine`
    (the `mutable_objects` of what was sent), or an array sharing memory
    with one of them: what arrives must be the receiver's own."""
    theirs = mutable_objects(received)
    common = set(mine) & set(theirs)
    if common:
        raise Mismatch(f"arrived holding objects of what was sent: {theirs[common.pop()]!r:.200}")
    sent_arrays = [obj for obj in mine.values() if isinstance(obj, np.ndarray) and obj.size]
    for obj in theirs.values():
        if isinstance(obj, np.ndarray) and obj.size:
            for other in sent_arrays:
                if np.may_share_memory(obj, other) and np.shares_memory(obj, other, max_work=10**4):
                    raise Mismatch("arrived as an array that shares memory with an array sent")
