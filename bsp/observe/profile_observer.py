"""The profile's recorder: on every rank, an observer of
`bsp.core.observed_engine.ObservedEngine` that notes per superstep the kind of call that
ended it and the user's call site, when the rank entered and left the sync,
the payload bytes and messages it sent and received, and the transport
exchanges the sync took.  Its `RankProfile` travels back to the launching
process in the rank's Outcome, where `bsp.observe.profile.Profile` aligns them."""

from __future__ import annotations

import time
from dataclasses import dataclass
from types import CodeType, FrameType
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from bsp.base.callsite import user_frame

if TYPE_CHECKING:
    from bsp.core.observed_engine import ObservedEngine

# The columns of a rank's record, one row per superstep.
COLUMNS = ("kind", "arg", "site", "entered", "left", "bytes_sent", "bytes_received",
           "messages_sent", "messages_received", "exchanges", "bytes_written")
(KIND, ARG, SITE, ENTERED, LEFT, BYTES_SENT, BYTES_RECEIVED, MESSAGES_SENT, MESSAGES_RECEIVED, EXCHANGES,
 BYTES_WRITTEN) = range(len(COLUMNS))


class Recorder:
    """Notes each superstep of one rank.  Cost per superstep: a walk up the
    stack to the user's call site (a dictionary lookup per frame; the site
    is keyed by code and instruction, its line worked out once) and one
    row of eleven numbers, kept as 88 bytes of an array (rows are gathered in
    a list and packed into an array every CHUNK_ROWS supersteps)."""

    CHUNK_ROWS = 4096

    def __init__(self, clock: Callable[[], float] = time.perf_counter):
        self._pending: list[tuple[Any, ...]] = []
        self._chunks: list[np.ndarray] = []
        self._sites: dict[Any, int] = {}        # (id of code, instruction) or a site given as text -> index
        self._site_names: list[str] = []        # 'file:line in function' of each
        self._codes: list[CodeType] = []        # the code objects whose ids are in keys
        self.start = clock()
        self.clock_offset = time.time() - clock()

    def superstep(self, engine: "ObservedEngine", kind: int, arg: int, site: str | None,
                  entered: float, left: float) -> None:
        if site is None:
            frame = user_frame(3)      # from the caller of ObservedEngine.exchange, which calls this
            key: Any = (id(frame.f_code), frame.f_lasti)      # (hashing a code object costs microseconds)
        else:
            key = site
        index = self._sites.get(key)
        if index is None:
            index = self._sites[key] = len(self._sites)
            self._site_names.append(site if site is not None else self._name(frame))
        pending = self._pending
        pending.append((kind, arg, index, entered, left, engine.bytes_sent, engine.bytes_received,
                        engine.messages_sent, engine.messages_received, engine.superstep_exchanges,
                        engine.bytes_written))
        if len(pending) == self.CHUNK_ROWS:
            self._pack()

    def _name(self, frame: FrameType) -> str:
        """'file:line in function' of `frame`, whose code is kept from now on,
        so that its id, part of the site's key, stays its own."""
        code = frame.f_code
        self._codes.append(code)
        return f"{code.co_filename}:{frame.f_lineno} in {code.co_name}"

    def _pack(self) -> None:
        self._chunks.append(np.array(self._pending, np.float64).reshape(-1, len(COLUMNS)))
        self._pending = []

    def close(self) -> None:
        pass

    def result(self, pid: int) -> "RankProfile":
        """What this rank recorded, ready to travel in its Outcome."""
        self._pack()
        return RankProfile(pid, self.start, self.clock_offset, np.concatenate(self._chunks), self._site_names)


@dataclass
class RankProfile:
    """One rank's record: a row per superstep (see COLUMNS; times on the
    rank's own clock, `clock_offset` seconds behind the wall clock), and
    the call sites that the rows' site column indexes."""

    pid: int
    start: float
    clock_offset: float
    rows: np.ndarray
    sites: list[str]
