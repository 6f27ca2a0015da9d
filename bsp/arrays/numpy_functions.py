"""The numpy functions a DistArray answers (numpy's `__array_function__`
protocol): one table from numpy function to pybsp's implementation.

Each operation module registers its functions with `implements`;
`DistArray.__array_function__` looks them up here, and every numpy function
that is not in the table is a TypeError naming it, never a result computed
on the wrong thing.  Importing `bsp.arrays` imports every operation module,
so the table is whole once `bsp` is imported."""

from __future__ import annotations

from typing import Any, Callable, TypeVar

F = TypeVar("F", bound=Callable[..., Any])

HANDLED: dict[Callable[..., Any], Callable[..., Any]] = {}
"""numpy function -> the function that computes it on DistArrays."""


def implements(*numpy_functions: Callable[..., Any]) -> Callable[[F], F]:
    """Register the decorated function as the DistArray implementation of
    each of `numpy_functions` (called with the same arguments as numpy's)."""
    def register(function: F) -> F:
        for numpy_function in numpy_functions:
            HANDLED[numpy_function] = function
        return function
    return register


def unsupported(numpy_function: Callable[..., Any]) -> TypeError:
    """The error for a numpy function that DistArray does not implement."""
    name = getattr(numpy_function, "__name__", repr(numpy_function))
    module = getattr(numpy_function, "__module__", None) or "numpy"
    if module.startswith("numpy._") or module.startswith("numpy.lib") or module.startswith("numpy.core"):
        module = "numpy"        # a function's private home: users call it as numpy.NAME
    return TypeError(f"{module}.{name} is not supported on bsp.DistArray (see docs/numpy.md for the functions "
                     "that are); for numpy on the whole array use d.allgather(), for this rank's part d.local")


def call(numpy_function: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
    """numpy_function(*args, **kwargs) on DistArrays; TypeError if not registered."""
    implementation = HANDLED.get(numpy_function)
    if implementation is None:
        raise unsupported(numpy_function)
    return implementation(*args, **kwargs)
