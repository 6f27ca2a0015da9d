"""dill's pickler as pybsp uses it (see `bsp.core.wire`).

A module of its own because it is never compiled (see setup.py): a subclass
of a pickler compiled with mypyc built, and then crashed the interpreter.
"""

from __future__ import annotations

import functools
import pickle
import sys
import types
from typing import Any, cast


@functools.lru_cache(maxsize=None)
def dill_pickler(main_by_name: bool = True) -> type:
    """dill's pickler, with numpy arrays reduced as pickle (protocol 5)
    reduces them.  dill uses numpy's legacy reduce, which rebuilds an array
    of non-native byte order in native order; so a message that needs dill
    would otherwise arrive with other dtypes than a plain one.

    `main_by_name`: a function or class of `__main__` that `__main__` holds
    under its name travels by name, so that it is the receiver's (every
    rank's `__main__` holds the same ones: forked, or, under MPI, brought
    over by bsp.core.main_namespace); others travel by value.  Either way
    the globals of a function sent by value are the receiver's `__main__`:
    the one in `sys.modules` at the time, not the one dill saw on import
    (bsp.core.main_namespace swaps it for a run)."""
    import dill     # imported on first use: it is slow to import and rarely needed
    import numpy

    class Pickler(dill.Pickler):  # type: ignore[misc]  # dill has no type information
        def __init__(self, *args: Any, **kwargs: Any):
            super().__init__(*args, **kwargs)
            self._main = sys.modules["__main__"]

        def reducer_override(self, obj: Any) -> Any:
            if main_by_name and _named_in_main(obj):
                return obj.__qualname__
            if type(obj) is not numpy.ndarray:
                return NotImplemented
            rebuild, args, *rest = cast("tuple[Any, ...]", obj.__reduce_ex__(5))    # an array's: a tuple
            if args and isinstance(args[0], pickle.PickleBuffer):
                # in-band, as bytes: the pure-Python pickler under dill
                # memoizes the temporary copies it makes of PickleBuffers
                data = memoryview(args[0])
                args = (data.tobytes() if data.readonly else bytearray(data), *args[1:])
            return (rebuild, args, *rest)

    return Pickler


def _named_in_main(obj: Any) -> bool:
    """Whether `obj` is a function or class that `__main__` holds by its name."""
    if not isinstance(obj, (types.FunctionType, type)) or getattr(obj, "__module__", None) != "__main__":
        return False
    return getattr(sys.modules["__main__"], obj.__qualname__, None) is obj
