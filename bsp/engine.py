"""The superstep engine of one rank.

It keeps one outbox per destination for the current superstep, ends the
superstep with one transport exchange that also carries this rank's sync
record, applies the sync rules to the records of all ranks (`bsp.record`),
and files what arrived by channel for the data objects to read.

The rules are applied identically on every rank, from identical records, so
every rank reaches the same verdict and the same number of exchanges: that
is what keeps a failing or diverging program from hanging.

- a rank failed: its traceback is its payload; every rank raises RemoteError;
- ranks disagree: one more exchange carries each rank's call site, then every
  rank raises SyncMismatchError;
- otherwise the superstep's traffic is delivered.

After either error the engine is broken: every later call raises the same
error at once, without communicating, because the other ranks have stopped.
"""

from __future__ import annotations

from typing import Any, Iterable, Sequence

from . import wire
from .callsite import user_call_site
from .errors import BSPError, RemoteError, SyncMismatchError
from .mailbox import Arrival, Outbox, padding, unpack
from .record import Kind, Status, SyncRecord, Verdict, judge, pack_record
from .transport import Transport

# Channel 0 carries the collectives and the protocol's own messages (call
# sites, tracebacks); data objects get channels from FIRST_OBJECT_CHANNEL on,
# in creation order.
SYSTEM_CHANNEL = 0
FIRST_OBJECT_CHANNEL = 1


class Engine:
    """Outboxes, the sync record and the sync rules of one rank."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.pid = transport.pid
        self.nprocs = transport.nprocs
        self.superstep = 0
        self.objects = 0
        self.broken: BSPError | None = None
        self._outboxes: list[Outbox | None] = [None] * self.nprocs
        self._sending = False                   # whether any outbox holds something
        self._nothing = ((),) * self.nprocs     # what an exchange with nothing to send sends
        self._arrivals: dict[int, list[Arrival]] = {}

    # -- data objects -------------------------------------------------------

    def create_object(self) -> int:
        """Count a new data object and return its channel.  Every rank must
        create the same objects in the same order; the count is part of the
        sync record, so a rank that diverges is caught at the next sync."""
        channel = FIRST_OBJECT_CHANNEL + self.objects
        self.objects += 1
        return channel

    # -- queuing traffic ----------------------------------------------------

    def outbox(self, dest: int) -> Outbox:
        outbox = self._outboxes[dest]
        if outbox is None:
            outbox = self._outboxes[dest] = Outbox()
            self._sending = True
        return outbox

    def capture(self, buffer: memoryview, exclusive: bool) -> memoryview:
        """Copy `buffer` (a one-dimensional view of bytes) into send space
        now, so that later changes to the original do not change what is
        sent.  Returns the copy with its padding to the next ALIGN bytes.
        `exclusive`: it goes to one destination only (which may then keep
        the copy as its own)."""
        nbytes = buffer.nbytes
        space = self.transport.send_buffer(nbytes + padding(nbytes), exclusive)
        space[:nbytes] = buffer
        return space

    def post_object(self, channel: int, dests: Sequence[int], obj: Any) -> None:
        """Queue `obj` on `channel` for each of `dests`.  It is serialized
        once, now; its bulk buffers are captured once and shared."""
        data, buffers = wire.dumps(obj)
        bulk = [(self.capture(buffer, len(dests) == 1), buffer.nbytes) for buffer in buffers]
        for dest in dests:
            section = self.outbox(dest).section(channel)
            section.stream += data
            section.count += 1
            for padded, nbytes in bulk:
                section.add_bulk(padded, nbytes)

    def arrivals(self, channel: int) -> list[Arrival]:
        """What arrived on `channel` at the last exchange, in source order."""
        return self._arrivals.get(channel, [])

    def objects_on(self, channel: int, sources: Iterable[int] | None = None) -> list[tuple[int, Any]]:
        """The objects that arrived on `channel` at the last exchange, as
        (source, object) pairs ordered by source, then send order."""
        wanted = None if sources is None else set(sources)
        return [(arrival.source, obj)
                for arrival in self.arrivals(channel)
                if wanted is None or arrival.source in wanted
                for obj in wire.load_stream(arrival.stream, arrival.count, arrival.bulk)]

    # -- ending supersteps --------------------------------------------------

    def exchange(self, kind: int, arg: int = 0, status: int = Status.RUNNING,
                 site: str | None = None) -> None:
        """End the superstep: deliver the queued traffic, or raise the error
        the sync rules decide on.  `site` describes the caller for mismatch
        messages; by default, the user's call site."""
        if self.broken is not None:
            raise self.broken
        record = pack_record(self.superstep, kind, arg, self.objects, status)
        records = self._swap(record)
        if status or records != record * self.nprocs:
            verdict, parsed = judge(records, record, self.nprocs)
            if verdict is Verdict.FAILED:
                self._raise_remote_error(parsed)
            if verdict is Verdict.MISMATCH:
                self._raise_mismatch(parsed, site or user_call_site())
        self.superstep += 1

    def finish(self, site: str) -> None:
        """The program returned on this rank: the last exchange."""
        self.exchange(Kind.EXIT, status=Status.RETURNED, site=site)

    def fail(self, traceback_text: str) -> None:
        """The program raised on this rank: the last exchange, which tells
        every other rank at its next sync.  Queued traffic is dropped."""
        if self.broken is not None:
            return
        self._drop_outboxes()
        self.post_object(SYSTEM_CHANNEL, range(self.nprocs), traceback_text)
        try:
            self.exchange(Kind.EXIT, status=Status.FAILED)
        except BSPError:
            pass

    def _swap(self, record: bytes) -> bytes:
        """One transport exchange; file what arrived; return the records."""
        if self._sending:
            outgoing = [outbox.frames() if outbox is not None else () for outbox in self._outboxes]
            self._outboxes = [None] * self.nprocs
            self._sending = False
        else:
            outgoing = self._nothing
        records, incoming = self.transport.exchange(outgoing, record)
        if any(incoming):
            arrivals: dict[int, list[Arrival]] = {}
            for source, pieces in enumerate(incoming):
                if pieces is not None:
                    for channel, arrival in unpack(source, pieces):
                        arrivals.setdefault(channel, []).append(arrival)
            self._arrivals = arrivals
        elif self._arrivals:
            self._arrivals = {}
        return records

    def _drop_outboxes(self) -> None:
        self._outboxes = [None] * self.nprocs
        self._sending = False

    def _raise_remote_error(self, records: list[SyncRecord]) -> None:
        failed = [pid for pid, record in enumerate(records) if record.status == Status.FAILED]
        failures = dict(self.objects_on(SYSTEM_CHANNEL, failed))
        self.broken = RemoteError(failed[0], failures[failed[0]], failures)
        raise self.broken

    def _raise_mismatch(self, records: list[SyncRecord], site: str) -> None:
        mine = records[self.pid]
        description = f"{mine.describe()} at {site}"
        if len({record.objects for record in records}) > 1:
            description += f", having created {mine.objects} data objects"
        self._drop_outboxes()
        self.post_object(SYSTEM_CHANNEL, range(self.nprocs), description)
        self._swap(pack_record(mine.superstep, Kind.DIAGNOSE, 0, 0, Status.RUNNING))
        sites = [site for _, site in self.objects_on(SYSTEM_CHANNEL)]
        self.broken = SyncMismatchError(sites, mine.superstep)
        raise self.broken
