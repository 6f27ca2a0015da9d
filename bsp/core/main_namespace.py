"""The script's module (`__main__`) as the ranks of an MPI job share it.

Every rank of an MPI job runs the script up to its first `bsp.run`; from
there on only rank 0 reads it, and the other ranks run what rank 0 sends.
So that they see the one `__main__` namespace a script run by every rank
would see, each run brings rank 0's module state over (`snapshot` on rank
0, `adopt` on the others), before the call itself, whose functions and
classes of `__main__` then travel by name and resolve there.

What travels is every function and class the script defines, and every
other name that their code reads or writes (a module global set through
`global` and read elsewhere, a constant, a module imported late): the code
of functions travels by value (dill), their globals by reference to the
receiving rank's `__main__`, so that a function that sets a global and
another that reads it agree.  Names that no code of the script's functions
and classes mentions (a large array that only the top level uses) stay
behind, and so do values that cannot be pickled (an open file): a rank
keeps what its own run of the top level made of them.
"""

from __future__ import annotations

import contextlib
import sys
import types
from typing import Any, Iterator

from bsp.core import wire


def snapshot() -> bytes:
    """Rank 0's `__main__` state that its functions can reach, pickled
    (see the module's docstring); costs a dill pickle of those names, once
    per run (and one per name when some cannot be pickled)."""
    state = _reachable(vars(sys.modules["__main__"]))
    try:
        return wire.dill_dumps(state, main_by_name=False)
    except Exception:           # one value refuses: leave out the ones that do
        return wire.dill_dumps({name: value for name, value in state.items() if _picklable(value)},
                               main_by_name=False)


def adopt(state: bytes) -> None:
    """On a rank other than 0: make `__main__` hold the state `snapshot`
    took on rank 0 (for good: such a rank runs no more of the script)."""
    vars(sys.modules["__main__"]).update(wire.dill_loads(state))


@contextlib.contextmanager
def apart(state: bytes) -> Iterator[None]:
    """On rank 0, for the time of a run: a `__main__` of the run's own,
    holding what the other ranks adopt (`state`, from `snapshot`) over the
    names of the real one, so that what the program does to module globals
    stays in the run, as under the fork backend, where it happens in the
    ranks' copies.  Unpickle the run's call and pickle its outcome inside;
    read the outcomes after, so that they refer to the real `__main__`."""
    real = sys.modules["__main__"]
    own = types.ModuleType("__main__")
    vars(own).update(vars(real))
    sys.modules["__main__"] = own
    try:
        vars(own).update(wire.dill_loads(state))
        yield
    finally:
        sys.modules["__main__"] = real


def _reachable(namespace: dict[str, Any]) -> dict[str, Any]:
    """The script's own functions and classes, and the names their code uses."""
    defined = {name: value for name, value in namespace.items()
               if not _is_dunder(name) and _defined_in_main(value)}
    used = {name for value in defined.values() for name in _names_in(value)}
    return {name: namespace[name] for name in sorted(used | set(defined))
            if name in namespace and not _is_dunder(name)}


def _is_dunder(name: str) -> bool:
    return name.startswith("__") and name.endswith("__")


def _defined_in_main(value: Any) -> bool:
    return isinstance(value, (types.FunctionType, type)) and getattr(value, "__module__", None) == "__main__"


def _names_in(value: Any) -> Iterator[str]:
    """The global names that the code of a function, or of a class's
    methods, reads or writes."""
    for function in _functions_of(value):
        yield from _code_names(function.__code__)


def _functions_of(value: Any) -> Iterator[types.FunctionType]:
    if isinstance(value, types.FunctionType):
        yield value
        return
    for member in vars(value).values():
        if isinstance(member, (staticmethod, classmethod)):
            member = member.__func__
        if isinstance(member, property):
            yield from (part for part in (member.fget, member.fset, member.fdel)
                        if isinstance(part, types.FunctionType))
        elif isinstance(member, types.FunctionType):
            yield member


def _code_names(code: types.CodeType) -> Iterator[str]:
    """co_names of `code` and of the code nested in it (inner functions,
    lambdas, comprehensions), which holds its global names."""
    yield from code.co_names
    for constant in code.co_consts:
        if isinstance(constant, types.CodeType):
            yield from _code_names(constant)


def _picklable(value: Any) -> bool:
    try:
        wire.dill_dumps(value, main_by_name=False)
    except Exception:
        return False
    return True
