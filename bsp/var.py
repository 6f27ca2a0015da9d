"""`Var`: one value per rank, readable and writable by the others (BSPlib's
registered variable, Bulk's `var`)."""

from __future__ import annotations

from typing import Any

from .checks import check_pid
from .engine import Engine
from .future import Future
from .mailbox import Arrival

_PUT, _GET, _REPLY = 0, 1, 2


class Var:
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
        self._engine = engine
        self._channel = engine.create_object("var", self)
        self.value = value
        self._waiting: list[Future] = []

    def put(self, value: Any, dest: int) -> None:
        """Write a copy of `value` (taken now) into dest's image at the next
        sync.  Cost: adds the pickled size of `value` to h on this rank and
        on dest.  Raises ValueError for a bad dest, TypeError for a value
        that cannot be serialized."""
        engine = self._engine
        engine.post_object(self._channel, (check_pid(dest, engine.nprocs),), (_PUT, value))

    def get(self, source: int) -> Future:
        """Ask for a copy of source's image as it is at the end of this
        superstep (before its puts).  The Future's value is valid after the
        next sync, which then costs a second barrier (l) for the replies; h
        grows by the value's size on source and here."""
        engine = self._engine
        source = check_pid(source, engine.nprocs, "source")
        future = Future(f"var.get({source})", engine.superstep)
        engine.post_object(self._channel, (source,), (_GET, len(self._waiting)))
        self._waiting.append(future)
        engine.getting = True
        return future

    def serve(self, arrivals: list[Arrival]) -> None:
        engine = self._engine
        for source, (tag, payload) in engine.objects_in(arrivals):
            if tag == _GET:
                engine.post_object(self._channel, (source,), (_REPLY, payload, self.value))

    def deliver(self, arrivals: list[Arrival]) -> None:
        for _, (tag, payload) in self._engine.objects_in(arrivals):
            if tag == _PUT:
                self.value = payload

    def complete(self, arrivals: list[Arrival]) -> None:
        for _, (_, request, value) in self._engine.objects_in(arrivals):
            self._waiting[request].set(value)
        self._waiting = []

    def __repr__(self) -> str:
        return f"<bsp.Var value={self.value!r}>"
