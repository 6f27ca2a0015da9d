"""`ObservedEngine`: an Engine that measures every superstep of its rank
(its traffic, when it began and ended) for observers, the profile's
recorder (`bsp.observe.profile_observer`) and the progress line (`bsp.observe.logs`).  Which class
a rank runs is chosen once, when the run starts (`bsp.launch.rank_runner.run_program`), so
a plain `Engine` does no per-sync work for observers."""

from __future__ import annotations

import time
from typing import Callable, Protocol, Sequence

from bsp.core.engine import Engine
from bsp.core.sync_record import Status
from bsp.core.transport import Transport


class SuperstepObserver(Protocol):
    """What an ObservedEngine tells, on its rank, about each superstep."""

    def superstep(self, engine: "ObservedEngine", kind: int, arg: int, site: str | None,
                  entered: float, left: float) -> None:
        """A superstep ended normally: `kind` of call (`bsp.core.sync_record.Kind`) and
        its `arg` (the root of a rooted collective), the `site` the engine was given (None: the user's call site, which
        the observer may look up, as the caller's frames are still there),
        the clock when the sync was entered and left; the engine's traffic
        counters hold the superstep's traffic."""

    def close(self) -> None:
        """The program has ended on this rank."""


class ObservedEngine(Engine):
    """An Engine that measures every superstep for its observers.

    Per superstep it counts the payload bytes and messages this rank sent
    and received (pickle streams and bulk buffers, without the framing;
    messages to itself included), and the transport exchanges the sync took
    (one, two with gets).  Cost per superstep on top of Engine's: two clock
    reads, a few additions per message, and the observers' own work."""

    def __init__(self, transport: Transport, observers: Sequence[SuperstepObserver],
                 clock: Callable[[], float] = time.perf_counter):
        super().__init__(transport)
        self._defer = False         # its byte counts are taken at the send, from the pickle
        self._observers = tuple(observers)
        self._clock = clock
        # This superstep's traffic so far, and the exchanges of the last sync.
        self.bytes_sent = self.bytes_received = self.messages_sent = self.messages_received = 0
        self.bytes_written = 0
        self.superstep_exchanges = 0

    def _post(self, channel: int, dests: Sequence[int], data: bytes, buffers: list[memoryview],
              uncopied: Sequence[memoryview] = ()) -> None:
        super()._post(channel, dests, data, buffers, uncopied)
        nbytes = len(data) + sum(buffer.nbytes for buffer in buffers) + sum(buffer.nbytes for buffer in uncopied)
        self.messages_sent += len(dests)
        self.bytes_sent += nbytes * len(dests)

    def note_written(self, nbytes: int) -> None:
        self.bytes_written += nbytes

    def _swap(self, record: bytes) -> bytes:
        records = super()._swap(record)
        if self._arrivals:
            messages = nbytes = 0
            for arrivals in self._arrivals.values():
                for arrival in arrivals:
                    messages += arrival.count
                    nbytes += arrival.stream.nbytes
                    for buffer in arrival.bulk:
                        nbytes += buffer.nbytes
            self.messages_received += messages
            self.bytes_received += nbytes
        return records

    def exchange(self, kind: int, arg: int = 0, status: int = Status.RUNNING,
                 site: str | None = None, group: tuple[int, int] = (0, 0)) -> None:
        entered = self._clock()
        before = self.exchanges
        super().exchange(kind, arg, status, site, group)
        left = self._clock()
        self.superstep_exchanges = self.exchanges - before
        for observer in self._observers:
            observer.superstep(self, kind, arg, site, entered, left)
        self.bytes_sent = self.bytes_received = self.messages_sent = self.messages_received = 0
        self.bytes_written = 0

    def close(self) -> None:
        super().close()
        for observer in self._observers:
            observer.close()
