"""Message queues: independent channels of Python objects between ranks."""

from __future__ import annotations

from typing import Any, Iterator

from .checks import check_pid
from .engine import Engine


class Queue:
    """A message channel.  `send(obj, dest)` queues a copy of `obj` for
    `dest`; after the next sync, iterating the queue on `dest` yields
    `(source, obj)` pairs ordered by source pid, then send order.

    Create queues with `world.queue()` (collectively: every rank creates the
    same queues in the same order).  Messages sent with `world.send` travel
    on the world's own default queue.
    """

    def __init__(self, engine: Engine, channel: int):
        self._engine = engine
        self._channel = channel
        self._delivered: tuple[int, list[tuple[int, Any]]] = (-1, [])

    def send(self, obj: Any, dest: int) -> None:
        """Queue a copy of `obj` for rank `dest`, delivered at the next sync.

        Cost: no superstep of its own; adds the pickled size of `obj` to this
        superstep's h on this rank and on `dest`.  Raises ValueError for a
        dest outside 0..nprocs-1 and TypeError for an object that neither
        pickle nor dill can serialize.
        """
        engine = self._engine
        engine.post_object(self._channel, (check_pid(dest, engine.nprocs),), obj)

    def messages(self) -> list[tuple[int, Any]]:
        """What arrived at the last sync: `(source, obj)` pairs, ordered by
        source pid, then send order.  Decoded on first use; costs nothing
        in supersteps."""
        superstep, messages = self._delivered
        if superstep != self._engine.superstep:
            messages = self._engine.objects_on(self._channel)
            self._delivered = (self._engine.superstep, messages)
        return list(messages)

    def __iter__(self) -> Iterator[tuple[int, Any]]:
        return iter(self.messages())

    def __len__(self) -> int:
        return sum(arrival.count for arrival in self._engine.arrivals(self._channel))
