"""Message queues: independent channels of Python objects between ranks."""

from __future__ import annotations

from functools import partial
from typing import Any, Iterator

import numpy as np

from bsp.base.argument_checks import check_pid
from bsp.objects.data_object import Channel
from bsp.core.engine import Engine
from bsp.core.sender import Sender


class Queue(Channel):
    """A message channel.  `send(obj, dest)` queues a copy of `obj` for
    `dest`; after the next sync, iterating the queue on `dest` yields
    `(source, obj)` pairs ordered by source pid, then send order.

    Create queues with `world.queue()` (collectively: every rank creates the
    same queues in the same order).  Messages sent with `world.send` travel
    on the world's own default queue.
    """

    def __init__(self, engine: Engine, channel: int):
        super().__init__(engine, channel)
        self._delivered: tuple[int, list[tuple[int, Any]]] = (-1, [])
        # The commonest call runs compiled (a Sender), which calls the method
        # below for anything else; the method stays for its checks and docs.
        self.send = Sender(engine, channel, partial(Queue.send, self))  # type: ignore[method-assign]

    def send(self, obj: Any, dest: int, copy: bool = True) -> None:
        """Queue a copy of `obj` for rank `dest`, delivered at the next sync.

        With `copy=False` (BSPlib's hpput), `obj` is a buffer (a numpy
        array, or anything with the buffer protocol: it arrives as a numpy
        array of its items) that is not copied now: its bytes leave from
        where they lie at the next sync (the MPI backend sends them from
        there; the fork backend writes them once into shared memory, which
        is their transfer; under 64 KiB they are copied with the message).
        The caller promises not to change it before the next sync; if it
        does, whatever is in it at the sync arrives, never a crash.

        Cost: no superstep of its own; adds the pickled size of `obj` to this
        superstep's h on this rank and on `dest`.  Raises ValueError for a
        dest outside 0..nprocs-1 and TypeError for an object that neither
        pickle nor dill can serialize, or, with copy=False, for one that is
        not a buffer.
        """
        engine = self._engine
        if type(dest) is not int or not 0 <= dest < engine.nprocs:
            dest = check_pid(dest, engine.nprocs)
        if copy:
            engine.post_one(self._channel, dest, obj)
        else:
            engine.post_object(self._channel, (dest,), unbuffered(obj), copy=False)

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


def unbuffered(obj: Any) -> np.ndarray:
    """`obj` as a numpy array on its own memory, for a send without a copy;
    TypeError for what has no buffer of numbers."""
    if not isinstance(obj, np.ndarray):
        try:
            obj = np.asarray(memoryview(obj))
        except (TypeError, ValueError):
            raise TypeError(f"send with copy=False takes a buffer (a numpy array, bytearray, memoryview, ...) "
                            f"and sends it without copying; {type(obj).__name__!r} is not one: "
                            f"send it with copy=True") from None
    array: np.ndarray = obj
    if array.dtype.hasobject:
        raise TypeError("send with copy=False sends an array's bytes; an array of Python objects "
                        "(dtype object) has none: send it with copy=True")
    return array
