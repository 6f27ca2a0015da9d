"""The bases of the data objects: `Channel`, what every one has (a queue, a
Var, a Coarray): an engine and a channel of its own; and `DataObject`, what
`Var` and `Coarray` share, the scaffolding of a data object whose images
other ranks write (puts) and read (gets).

A data object has a channel of its own (`Engine.create_object`).  Every
message on it is a raw message (`Engine.post_raw`): a small pickled header
and, beside it, frames of raw bytes.  Three kinds travel:

- data (a put, or anything else the object applies at the sync): delivered
  to `_apply`, in order of source pid, then post order;
- requests (a get): answered by `_answer` on the rank that holds the image,
  at the sync, before any put of that sync is applied (BSPlib's order), from
  the image as it was at the end of the superstep;
- replies: handed to the callback the request was made with, once the
  replies have arrived (a sync with requests costs a second exchange).
"""

from __future__ import annotations

from typing import Any, Callable, Sequence

from bsp.core.engine import Engine
from bsp.core.mailbox import Arrival

_DATA, _REQUEST, _REPLY = 0, 1, 2

# What a request's reply is handed to: (the reply's header, its frames).
OnReply = Callable[[Any, list[memoryview]], None]


class Channel:
    """Base class of the data objects: the engine of this rank, and the
    channel on which the object's traffic travels (see bsp.core.engine)."""

    def __init__(self, engine: Engine, channel: int):
        self._engine = engine
        self._channel = channel


class DataObject(Channel):
    """Base class: a channel, and the put/get/reply protocol on it.
    Subclasses define `_apply` and `_answer`."""

    def __init__(self, engine: Engine, description: str):
        """Create the object collectively (see `Engine.create_object`;
        `description` is what must agree on every rank)."""
        super().__init__(engine, engine.create_object(description, self))
        self._on_reply: list[OnReply] = []      # the pending gets of this superstep, by request number

    # -- queuing (from the program) -----------------------------------------

    def _post(self, dests: Sequence[int], header: Any, frames: Sequence[memoryview] = (),
              copy: bool = True) -> None:
        """Queue data for `_apply` on each of `dests`.  `copy` False: the
        frames are this object's own fresh memory, nobody changes them."""
        self._engine.post_raw(self._channel, dests, (_DATA, header), frames, copy)

    def _request(self, source: int, header: Any, on_reply: OnReply, frames: Sequence[memoryview] = (),
                 copy: bool = True) -> None:
        """Queue a request for `_answer` on `source`; its reply goes to
        `on_reply` during the next sync."""
        engine = self._engine
        engine.post_raw(self._channel, (source,), (_REQUEST, len(self._on_reply), header), frames, copy)
        self._on_reply.append(on_reply)
        engine.request_replies()

    # -- what subclasses define ---------------------------------------------

    def _apply(self, source: int, header: Any, frames: list[memoryview]) -> None:
        """Apply data that `source` posted (at the sync, in order)."""
        raise NotImplementedError

    def _answer(self, source: int, header: Any, frames: list[memoryview]
                ) -> tuple[Any, Sequence[memoryview], bool]:
        """The reply to a request from `source`: (header, frames, whether
        the frames must be copied, as they are not fresh memory)."""
        raise NotImplementedError

    # -- at the sync (see bsp.core.engine.Delivering) ------------------------------

    def serve(self, arrivals: list[Arrival]) -> None:
        engine = self._engine
        for source, (kind, *request), frames in engine.raw_messages(arrivals):
            if kind == _REQUEST:
                number, header = request
                reply, reply_frames, copy = self._answer(source, header, frames)
                engine.post_raw(self._channel, (source,), (_REPLY, number, reply), reply_frames, copy)

    def deliver(self, arrivals: list[Arrival]) -> None:
        for source, (kind, *data), frames in self._engine.raw_messages(arrivals):
            if kind == _DATA:
                self._apply(source, data[0], frames)

    def complete(self, arrivals: list[Arrival]) -> None:
        for _, (_, number, reply), frames in self._engine.raw_messages(arrivals):
            self._on_reply[number](reply, frames)
        self._on_reply = []
