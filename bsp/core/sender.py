"""`Sender`: the send call of a message queue (`world.send`, `queue.send`),
compiled with the engine layer (see setup.py), so that the commonest call of
a BSP program, a small object sent to a valid pid with a copy, is one call
into compiled code instead of an interpreted method calling the engine.

Everything else (a pid to check, `copy=False`, a wrong argument) goes to the
queue's own, interpreted `send`, which checks it and raises the API's errors
with the API's messages."""

from __future__ import annotations

from typing import Any, Callable

from bsp.core.engine import Engine


class Sender:
    """`send(obj, dest, copy=True)` on one channel: the fast path of
    `bsp.Queue.send` (and so of `bsp.World.send`), which it calls for
    anything but the common case.  Same arguments, same cost, same errors."""

    def __init__(self, engine: Engine, channel: int, checked_send: Callable[[Any, Any, Any], None]):
        self._engine = engine
        self._channel = channel
        self._checked_send = checked_send

    def __call__(self, obj: Any, dest: Any, copy: Any = True) -> None:
        engine = self._engine
        if copy is True and type(dest) is int and 0 <= dest < engine.nprocs:
            engine.post_one(self._channel, dest, obj)
        else:
            self._checked_send(obj, dest, copy)
