"""Checking, in the launching process, that a program can be called as
`program(world, *args, **kwargs)`, before any rank is started: a mistake in
a `bsp.run` call is one TypeError at the call, not the same failure on every
rank."""

from __future__ import annotations

import difflib
import inspect
from typing import Any, Callable, Iterable

_WORLD = object()       # stands for the World: binding checks names and counts, not types


def check_program_call(program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
                       run_keywords: Iterable[str]) -> None:
    """Raise TypeError, saying what is wrong, if `program(world, *args,
    **kwargs)` would fail for its arguments alone: a keyword the program
    does not take (with "did you mean" among `run_keywords`, bsp.run's own,
    and the program's parameters), or a program without its World
    parameter.  A program whose signature Python cannot tell (some builtins
    and extension functions) passes unchecked."""
    try:
        signature = inspect.signature(program)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(_WORLD, *args, **kwargs)
    except TypeError as error:
        raise TypeError(_explain(program, signature, args, kwargs, list(run_keywords), error)) from None


def _explain(program: Callable[..., Any], signature: inspect.Signature, args: tuple[Any, ...],
             kwargs: dict[str, Any], run_keywords: list[str], error: TypeError) -> str:
    name = f"{_bare(program)}{signature}"
    unknown = _unknown_keyword(signature, kwargs)
    if unknown is not None:
        guesses = difflib.get_close_matches(unknown, run_keywords, n=1) or \
            difflib.get_close_matches(unknown, list(signature.parameters), n=1)
        hint = f": did you mean {guesses[0]}?" if guesses else \
            f" (bsp.run's own keywords: {', '.join(run_keywords)})"
        return f"bsp.run got the keyword argument {unknown!r}, which neither bsp.run nor {name} takes{hint}"
    if not _takes_a_world(signature) or (_binds(signature, args, kwargs) and not _names_a_world(signature)):
        written = "lambda world, ...: ..." if _bare(program) == "<lambda>" else f"def {_bare(program)}(world, ...)"
        return (f"a program's first parameter is the World: bsp.run calls {name} as "
                f"program(world, *args, **kwargs); define it as {written}")
    return f"bsp.run cannot call {name} with the world and these arguments: {error}"


def _unknown_keyword(signature: inspect.Signature, kwargs: dict[str, Any]) -> str | None:
    parameters = signature.parameters
    if any(p.kind is inspect.Parameter.VAR_KEYWORD for p in parameters.values()):
        return None
    for key in kwargs:
        parameter = parameters.get(key)
        if parameter is None or parameter.kind is inspect.Parameter.POSITIONAL_ONLY:
            return key
    return None


def _takes_a_world(signature: inspect.Signature) -> bool:
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD,
                  inspect.Parameter.VAR_POSITIONAL)
    return any(p.kind in positional for p in signature.parameters.values())


def _names_a_world(signature: inspect.Signature) -> bool:
    """Whether the first parameter is, by its name or annotation, the World."""
    first = next(iter(signature.parameters.values()))
    return first.name == "world" or "World" in str(first.annotation)


def _binds(signature: inspect.Signature, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bool:
    """Whether the arguments alone, without the World, fit: the program
    was written without its world parameter."""
    try:
        signature.bind(*args, **kwargs)
    except TypeError:
        return False
    return True


def _bare(program: Callable[..., Any]) -> str:
    return str(getattr(program, "__name__", type(program).__name__))
