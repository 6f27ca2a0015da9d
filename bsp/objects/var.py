"""`Var`: one value per rank, readable and writable by the others (BSPlib's
registered variable, Bulk's `var`)."""

from __future__ import annotations

from typing import Any, Sequence

from bsp.base.argument_checks import check_pid
from bsp.objects.data_object import DataObject
from bsp.core.engine import Engine
from bsp.objects.future import Future


class Var(DataObject):
    """A value on every rank.  Create with `world.var(value)` (collectively:
    every rank creates the same data objects in the same order).

    - `value`: this rank's image; read and assign it freely.
    - `put(value, dest)`: write dest's image at the next sync.
    - `get(source)`: a Future of source's image, valid after the next sync.

    Within one sync, gets are served first, from the images as they were at
    the end of the superstep, before its puts; then the puts are applied, in
    order of source pid, then put order, so when several puts reach one image
    the last of them wins.
    """

    def __init__(self, engine: Engine, value: Any):
        super().__init__(engine, "var")
        self.value = value

    def put(self, value: Any, dest: int) -> None:
        """Write a copy of `value` (taken now) into dest's image at the next
        sync.  Cost: adds the pickled size of `value` to h on this rank and
        on dest.  Raises ValueError for a bad dest, TypeError for a value
        that cannot be serialized."""
        self._post((check_pid(dest, self._engine.nprocs),), value)

    def get(self, source: int) -> Future:
        """Ask for a copy of source's image as it is at the end of this
        superstep (before its puts).  The Future's value is valid after the
        next sync, which then costs a second barrier (l) for the replies; h
        grows by the value's size on source and here."""
        engine = self._engine
        source = check_pid(source, engine.nprocs, "source")
        future = Future(f"var.get({source})", engine.superstep)
        self._request(source, None, lambda value, _: future.set(value))
        return future

    def _apply(self, source: int, value: Any, frames: list[memoryview]) -> None:
        self.value = value

    def _answer(self, source: int, header: Any, frames: list[memoryview]) -> tuple[Any, Sequence[memoryview], bool]:
        return self.value, (), True

    def __repr__(self) -> str:
        return f"<bsp.Var value={self.value!r}>"
