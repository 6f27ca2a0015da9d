"""Futures: the results of gets, complete after the next sync."""

from __future__ import annotations

from typing import Any

from bsp.errors import BSPError

_PENDING = object()


class Future:
    """The result of a get.  `value` is valid once the sync that ends the
    superstep of the get has returned; reading it earlier raises BSPError."""

    __slots__ = ("_value", "_what", "_superstep")

    def __init__(self, what: str, superstep: int):
        self._value: Any = _PENDING
        self._what = what
        self._superstep = superstep

    @property
    def ready(self) -> bool:
        """Whether `value` may be read."""
        return self._value is not _PENDING

    @property
    def value(self) -> Any:
        if self._value is _PENDING:
            raise BSPError(f"the value of {self._what} is not there yet: a get issued in superstep "
                           f"{self._superstep} completes when that superstep's sync returns")
        return self._value

    def set(self, value: Any) -> None:
        self._value = value

    def __repr__(self) -> str:
        state = repr(self._value) if self.ready else "pending"
        return f"<bsp.Future {self._what}: {state}>"
