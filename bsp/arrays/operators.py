"""Python's operators for DistArray, each the numpy ufunc numpy gives it
(`a + b` is `np.add(a, b)`, `a += b` is `np.add(a, b, out=(a,))`, ...),
which reaches DistArray.__array_ufunc__ (bsp.arrays.elementwise).

This is numpy.lib.mixins.NDArrayOperatorsMixin again, defined inside bsp on
purpose: profiles and mismatch messages name the innermost frame outside
the bsp package as the call site, and with numpy's mixin that frame would
be the mixin's, not the user's line."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

Method = Callable[..., Any]


def _defers(other: Any) -> bool:
    """Whether `other` opts out of numpy's ufuncs (__array_ufunc__ = None),
    so that Python should try its reflected operator instead."""
    return getattr(other, "__array_ufunc__", False) is None


def _forward(ufunc: np.ufunc, name: str) -> Method:
    def method(self: Any, other: Any) -> Any:
        return NotImplemented if _defers(other) else ufunc(self, other)
    method.__name__ = f"__{name}__"
    return method


def _reflected(ufunc: np.ufunc, name: str) -> Method:
    def method(self: Any, other: Any) -> Any:
        return NotImplemented if _defers(other) else ufunc(other, self)
    method.__name__ = f"__r{name}__"
    return method


def _inplace(ufunc: np.ufunc, name: str) -> Method:
    def method(self: Any, other: Any) -> Any:
        return ufunc(self, other, out=(self,))
    method.__name__ = f"__i{name}__"
    return method


def _unary(ufunc: np.ufunc, name: str) -> Method:
    def method(self: Any) -> Any:
        return ufunc(self)
    method.__name__ = f"__{name}__"
    return method


COMPARISONS: dict[str, np.ufunc] = {"lt": np.less, "le": np.less_equal, "eq": np.equal, "ne": np.not_equal, "gt": np.greater,
               "ge": np.greater_equal}
NUMERIC: dict[str, np.ufunc] = {"add": np.add, "sub": np.subtract, "mul": np.multiply, "matmul": np.matmul, "truediv": np.true_divide,
           "floordiv": np.floor_divide, "mod": np.remainder, "pow": np.power, "lshift": np.left_shift,
           "rshift": np.right_shift, "and": np.bitwise_and, "xor": np.bitwise_xor, "or": np.bitwise_or}
UNARY: dict[str, np.ufunc] = {"neg": np.negative, "pos": np.positive, "abs": np.absolute, "invert": np.invert}


class Operators:
    """The operators, as numpy's mixin defines them (divmod has no
    in-place form, comparisons no reflected one)."""

    __slots__ = ()
    __hash__ = None     # type: ignore[assignment]     # as numpy's mixin: == is elementwise, so unhashable


for _name, _ufunc in COMPARISONS.items():
    setattr(Operators, f"__{_name}__", _forward(_ufunc, _name))
for _name, _ufunc in NUMERIC.items():
    for _make in (_forward, _reflected, _inplace):
        _method = _make(_ufunc, _name)
        setattr(Operators, _method.__name__, _method)
for _make in (_forward, _reflected):
    _method = _make(np.divmod, "divmod")
    setattr(Operators, _method.__name__, _method)
for _name, _ufunc in UNARY.items():
    setattr(Operators, f"__{_name}__", _unary(_ufunc, _name))
