"""The superstep engine of one rank.

It keeps one outbox per destination for the current superstep, ends the
superstep with one transport exchange that also carries this rank's sync
record, applies the sync rules to the records of all ranks (`bsp.core.sync_record`),
and files what arrived by channel for the data objects to read.

The rules are applied identically on every rank, from identical records, so
every rank reaches the same verdict and the same number of exchanges: that
is what keeps a failing or diverging program from hanging.

- a rank failed: its traceback is its payload; every rank raises RemoteError;
- ranks disagree: one more exchange carries each rank's call site, then every
  rank raises SyncMismatchError;
- otherwise the superstep's traffic is delivered.  If any rank asked for data
  with a get, the data objects first serve the requests that arrived, from
  their images as they were before this superstep's puts, and one more
  exchange carries the replies (BSPlib's order: gets before puts).  Then the
  data objects apply the puts that arrived, in source order, and the replies
  complete the futures of the gets.

Data objects that batch their traffic (a coarray's element puts) register a
flush in `before_exchange`, called once at the start of the next exchange.

After either error the engine is broken: every later call raises the same
error at once, without communicating, because the other ranks have stopped.

`bsp.core.observed_engine.ObservedEngine` measures every superstep (its traffic and when
it began and ended) for observers: the profile (`bsp.observe.profile_observer`) and the
progress line (`bsp.observe.logs`).  Which class a rank runs is chosen once, when the
run starts, so an `Engine` without observers does no per-sync work for them.
"""

from __future__ import annotations

import threading
import weakref
import zlib
from _thread import _count as count_started_threads
from typing import Any, Callable, Final, Iterable, Iterator, Protocol, Sequence

from bsp.core import plain_arrays, wire
from bsp.core.align import padding
from bsp.core.buffers import copy_into
from bsp.base.callsite import user_call_site
from bsp.errors import BSPError, RemoteError, SyncMismatchError, SyncTimeoutError, shortened
from bsp.core.mailbox import Arrival, Outbox, Section, unpack
from bsp.core.sync_record import (RECORD_FORMAT, RECORD_SIZE, Flags, Kind, Status, SyncRecord, Verdict, judge,
                                  pack_record)
from bsp.core.transport import Incoming, Outgoing, Transport

# Final: compiled, these are C statics, not a lookup in the module's dict per call.
_IMMUTABLE: Final = wire.IMMUTABLE
_thread: Final = threading.get_ident
# The threads started from Python that are running, the main one not
# counted: while none is, only the main thread runs Python code, and if it
# owns the engine a caller need not ask for its own identity (which costs
# a quarter of a small send).  A count that a fork left stale only ever
# errs high, which costs that saving, never the check.  (A thread that a C
# library made and that enters Python on its own is not counted: such a
# thread's small send is not caught.)
_threads_started: Final = count_started_threads
_RECORD: Final = RECORD_FORMAT       # packed here, not by an interpreted pack_record per sync
_NO_OWNER: Final = -1       # the owner once the program has returned (no thread has this ident)
_NOTHING: Final[Outgoing] = {}      # what an exchange with nothing to send sends (transports only read it)

# Channel 0 carries the collectives and the protocol's own messages (call
# sites, tracebacks), channel 1 the messages of world.send; data objects get
# channels from FIRST_OBJECT_CHANNEL on, in creation order.
SYSTEM_CHANNEL = 0
DEFAULT_QUEUE_CHANNEL = 1
FIRST_OBJECT_CHANNEL = 2
# A split's identity is its data object's channel * MAX_AXES + the axis, for
# the groups of a grid, one split per axis.
MAX_AXES = 64


class Delivering(Protocol):
    """A data object that acts at every sync on what arrived for it."""

    def serve(self, arrivals: list[Arrival]) -> None:
        """Answer the get requests that arrived (queue replies)."""

    def deliver(self, arrivals: list[Arrival]) -> None:
        """Apply the puts that arrived, in order.  May raise, for this
        rank's own program, an error found only now (the sync still
        completes first)."""

    def complete(self, arrivals: list[Arrival]) -> None:
        """Complete futures from the replies that arrived (called after every
        round of replies, with or without replies for this object)."""


class Engine:
    """Outboxes, the sync record and the sync rules of one rank."""

    def __init__(self, transport: Transport):
        self.transport = transport
        self.pid = transport.pid
        self.nprocs = transport.nprocs
        self.superstep = 0
        self.exchanges = 0                      # transport exchanges: one per sync, two with gets
        self.objects = 0
        self.signature = 0                      # crc32 of the kinds of data objects created
        self.created: list[str] = []            # what they are, for messages
        self.broken: BSPError | None = None
        self.getting = False                    # whether this superstep has gets
        self.before_exchange: list[Callable[[], None]] = []     # to call once at the next exchange
        # Keyed by destination, only those sent to: a superstep that talks to
        # k ranks costs O(k), whatever p (docs/performance.md).
        self._outboxes: dict[int, Outbox] = {}
        # The section of the last post_one, by (channel, dest): a program's
        # sends come in runs to one rank, which then skip two dict lookups.
        self._last: tuple[int, int] = (-1, -1)
        self._last_section = Section()
        self._arrivals: dict[int, list[Arrival]] = {}
        self._delivering: weakref.WeakValueDictionary[int, Delivering] = weakref.WeakValueDictionary()
        self._ever_delivering = False           # whether _delivering ever held one (its len() is Python code)
        self._owner = threading.get_ident()     # the thread that runs the program (a plain int: compiled, no boxing)
        self._main_owns = self._owner == threading.main_thread().ident
        self._defer = True                      # pickle immutable messages at the sync (see post_object)
        # From this size on an array's data travels as a bulk buffer, not in
        # the stream: the transport's choice (Transport.array_bulk_from).
        self.array_bulk_from = transport.array_bulk_from() or plain_arrays.INBAND_LIMIT

    def close(self) -> None:
        """The program has ended on this rank: no more communication."""
        self._owner = _NO_OWNER
        self._main_owns = False

    def check_caller(self) -> None:
        """Raise BSPError unless called from the program's own thread, while
        the program runs (communication from elsewhere would desynchronize
        the ranks)."""
        if threading.get_ident() != self._owner:
            if self._owner == _NO_OWNER:
                raise BSPError("this World's program has returned: its World can no longer communicate")
            raise BSPError("World methods must be called from the thread that runs the program: "
                           "other threads may compute, but only that thread sends and syncs")

    # -- data objects -------------------------------------------------------

    def create_object(self, description: str, delivering: Delivering | None = None) -> int:
        """Count a new data object and return its channel.  Every rank must
        create the same objects in the same order: their number and a
        signature of their descriptions are part of the sync record, so a
        rank that diverges is caught at the next sync.  A `delivering`
        object is called at every sync (see Delivering)."""
        channel = FIRST_OBJECT_CHANNEL + self.objects
        self.objects += 1
        self.signature = zlib.crc32(description.encode(), self.signature)
        self.created.append(description)
        if delivering is not None:
            self._delivering[channel] = delivering
            self._ever_delivering = True
        return channel

    def request_replies(self) -> None:
        """A get was queued: this superstep's sync takes a round of replies
        (one more exchange, and l) after the requests are served."""
        self.getting = True

    def create_split(self, description: str) -> int:
        """Count a new data object that makes groups (a split, a grid; see
        `create_object`) and return the identity of its splits: axis a's is
        the returned value + a, for a < MAX_AXES.  Group collectives carry
        it in the sync record, so that ranks calling collectives of
        different splits get SyncMismatchError."""
        return self.create_object(description) * MAX_AXES

    # -- queuing traffic ----------------------------------------------------

    def outbox(self, dest: int) -> Outbox:
        outbox = self._outboxes.get(dest)
        if outbox is None:
            outbox = self._outboxes[dest] = Outbox()
        return outbox

    def _section(self, channel: int, dest: int) -> Section:
        """This superstep's section of `channel` for `dest`, made if new."""
        outbox = self._outboxes.get(dest) or self.outbox(dest)
        return outbox.sections.get(channel) or outbox.section(channel)

    def capture(self, buffer: memoryview, exclusive: bool) -> memoryview:
        """Copy `buffer` (a one-dimensional view of bytes) into send space
        now, so that later changes to the original do not change what is
        sent.  Returns the copy with its padding to the next ALIGN bytes.
        `exclusive`: it goes to one destination only (which may then keep
        the copy as its own)."""
        nbytes = buffer.nbytes
        space = self.transport.send_buffer(nbytes + padding(nbytes), exclusive)
        copy_into(space, buffer)
        return space

    def post_object(self, channel: int, dests: Sequence[int], obj: Any, copy: bool = True) -> None:
        """Queue `obj` on `channel` for each of `dests`.  It is serialized
        once, now; its bulk buffers are captured once and shared.  With
        `copy` False they are not captured: they go out from where they lie
        at the next exchange (the caller must not change them before)."""
        if self._defer and (type(obj) in _IMMUTABLE or wire.deferrable(obj)):
            # Immutable: its pickle may wait until the sync, one for all such
            # messages.
            self.check_caller()
            for dest in dests:
                self._section(channel, dest).defer(obj)
            return
        data, buffers = wire.dumps(obj, self.array_bulk_from)
        self._post(channel, dests, data, buffers if copy else [], [] if copy else buffers)

    def post_one(self, channel: int, dest: int, obj: Any) -> None:
        """`post_object` for one destination, a valid pid: the commonest
        send, a small immutable object (a number, a short tuple), is queued
        here with no call it can do without."""
        kind = type(obj)
        # floats and ints first: a pointer comparison each, where the set's lookup hashes
        if ((kind is float or kind is int or kind in _IMMUTABLE) and self._defer
                and (self._main_owns and _threads_started() == 0 or _thread() == self._owner)):
            if self._last != (channel, dest):
                self._last_section = self._section(channel, dest)
                self._last = (channel, dest)
            self._last_section.defer(obj)
        else:
            self.post_object(channel, (dest,), obj)

    def post_raw(self, channel: int, dests: Sequence[int], header: Any, frames: Sequence[memoryview] = (),
                 copy: bool = True) -> None:
        """Queue a picklable `header` and, beside it, raw `frames` that are
        never pickled (one-dimensional views of bytes), for each of `dests`.
        The frames are copied now, unless `copy` is False (memory nobody
        changes before the next exchange).  The channel must carry raw
        messages only (see `raw_messages`)."""
        encoded, buffers = wire.dumps((header, len(frames)))
        self._post(channel, dests, encoded, [*buffers, *frames] if copy else buffers, () if copy else frames)

    def _post(self, channel: int, dests: Sequence[int], data: bytes, buffers: list[memoryview],
              uncopied: Sequence[memoryview] = ()) -> None:
        """Queue a message: its stream `data`, its `buffers` (captured now)
        and then its `uncopied` buffers (sent from where they lie)."""
        self.check_caller()
        bulk = [(self.capture(buffer, len(dests) == 1), buffer.nbytes) for buffer in buffers]
        for dest in dests:
            section = self._section(channel, dest)
            section.add_stream(data)
            for padded, nbytes in bulk:
                section.add_bulk(padded, nbytes)
            for buffer in uncopied:
                section.add_uncopied(buffer)

    # -- reading what arrived -----------------------------------------------

    def arrivals(self, channel: int) -> list[Arrival]:
        """What arrived on `channel` at the last exchange, in source order."""
        return self._arrivals.get(channel, [])

    def objects_on(self, channel: int, sources: Iterable[int] | None = None) -> list[tuple[int, Any]]:
        """The objects that arrived on `channel` at the last exchange, as
        (source, object) pairs ordered by source, then send order."""
        arrivals = self._arrivals.get(channel, [])
        if sources is not None:
            wanted = set(sources)
            arrivals = [arrival for arrival in arrivals if arrival.source in wanted]
        found: list[tuple[int, Any]] = []
        for arrival in arrivals:
            source: Any = arrival.source        # boxed once, not per pair
            # over a list, a compiled comprehension makes its list at full size
            pairs = [(source, obj) for obj in wire.load_objects(arrival.stream, arrival.count, arrival.bulk)]
            if found:
                found += pairs
            else:
                found = pairs
        return found

    @staticmethod
    def objects_in(arrivals: list[Arrival]) -> Iterator[tuple[int, Any]]:
        """(source, object) of the object messages in `arrivals`."""
        for arrival in arrivals:
            for obj in wire.load_stream(arrival.stream, arrival.count, arrival.bulk):
                yield arrival.source, obj

    @staticmethod
    def raw_messages(arrivals: list[Arrival]) -> Iterator[tuple[int, Any, list[memoryview]]]:
        """(source, header, frames) of raw messages (see `post_raw`),
        ordered by source, then send order."""
        for arrival in arrivals:
            bulk = iter(arrival.bulk)     # the headers' own buffers, each followed by its frames
            for header, nframes in wire.load_stream(arrival.stream, arrival.count, bulk):
                yield arrival.source, header, [next(bulk) for _ in range(nframes)]

    def note_written(self, nbytes: int) -> None:
        """This superstep wrote `nbytes` to files (a checkpoint): for the
        observers of an ObservedEngine; nothing here."""

    # -- ending supersteps --------------------------------------------------

    def exchange(self, kind: int, arg: int = 0, status: int = Status.RUNNING,
                 site: str | None = None, group: tuple[int, int] = (0, 0)) -> None:
        """End the superstep: deliver the queued traffic, or raise the error
        the sync rules decide on.  `site` describes the caller for mismatch
        messages; by default, the user's call site.  `group`: for a group
        collective, (the split's identity, the group's leader) for the
        record.  Costs one barrier, two if any rank got data with a get."""
        if _thread() != self._owner:
            self.check_caller()
        if self.before_exchange:
            flushes, self.before_exchange = self.before_exchange, []
            for flush in flushes:
                flush()
        flags = self._round(kind, arg, status, Flags.GETS if self.getting else 0, site, group)
        self.getting = False
        try:
            if self._ever_delivering:
                self._act(flags & Flags.GETS)
        finally:
            self.superstep += 1

    def _round(self, kind: int, arg: int, status: int, flags: int, site: str | None,
               group: tuple[int, int] = (0, 0)) -> int:
        """One exchange and the sync rules; returns the flags of all ranks."""
        if self.broken is not None:
            raise self.broken
        record = _RECORD.pack(self.superstep, kind, arg, self.objects, self.signature, status, flags, *group)
        records = self._swap(record)
        if len(records) == RECORD_SIZE:        # the transport's short answer: every rank's is this
            if records == record and not status:
                return flags
            records *= self.nprocs
        if status or records != record * self.nprocs:
            verdict, parsed, flags = judge(records, self.nprocs)
            if verdict is Verdict.FAILED:
                self._raise_remote_error(parsed)
            if verdict is Verdict.MISMATCH:
                self._raise_mismatch(parsed, site or user_call_site())
        return flags

    def _act(self, replies_needed: int) -> None:
        """The data objects' part of a sync: serve gets, apply puts, complete
        futures."""
        arrived = self._arrivals
        objects = list(self._delivering.items())
        replies: dict[int, list[Arrival]] = {}
        if replies_needed:
            for channel, obj in objects:
                obj.serve(arrived.get(channel, []))
            self._round(Kind.REPLIES, 0, Status.RUNNING, 0, None)
            replies, self._arrivals = self._arrivals, arrived
        # An object may raise (a put this rank made was found out of bounds
        # at this sync): the others are still served, and the first error
        # is raised once the sync is complete on this rank.
        errors = []
        for channel, obj in objects:
            try:
                if channel in arrived:
                    obj.deliver(arrived[channel])
                if replies_needed:
                    obj.complete(replies.get(channel, []))
            except Exception as error:
                errors.append(error)
        if errors:
            raise errors[0]

    def finish(self, site: str) -> None:
        """The program returned on this rank: the last exchange."""
        self.exchange(Kind.EXIT, status=Status.RETURNED, site=site)

    def fail(self, traceback_text: str) -> None:
        """The program raised on this rank: the last exchange, which tells
        every other rank at its next sync (the traceback cut to about 64 KiB,
        see bsp.errors.shortened: h is that much).  Queued traffic is dropped."""
        if self.broken is not None:
            return
        self._drop_outboxes()
        # What the others get is cut to a few KiB (a 200 MB message would keep
        # them waiting, past the sync timeout under load); this rank's report
        # to the launching process keeps the whole text.
        self.post_object(SYSTEM_CHANNEL, range(self.nprocs), shortened(traceback_text))
        try:
            self.exchange(Kind.EXIT, status=Status.FAILED)
        except BSPError:
            pass

    def _swap(self, record: bytes) -> bytes:
        """One transport exchange; file what arrived; return the records."""
        outgoing: Outgoing = _NOTHING
        if self._outboxes:
            outgoing = {dest: outbox.frames() for dest, outbox in self._outboxes.items()}
            self._outboxes = {}
            self._last = (-1, -1)
        try:
            records, incoming = self.transport.exchange(outgoing, record)
        except SyncTimeoutError as error:
            self.broken = error       # the late ranks are lost to the run
            raise
        self.exchanges += 1
        if incoming:
            self._arrivals = self._file(incoming)
        elif self._arrivals:
            self._arrivals = {}
        return records

    @staticmethod
    def _file(incoming: Incoming) -> dict[int, list[Arrival]]:
        """What arrived, by channel, each channel's in source order."""
        arrivals: dict[int, list[Arrival]] = {}
        for source in sorted(incoming) if len(incoming) > 1 else incoming:
            for channel, arrival in unpack(source, incoming[source]):
                arrivals.setdefault(channel, []).append(arrival)
        return arrivals

    def _drop_outboxes(self) -> None:
        self._outboxes = {}
        self._last = (-1, -1)
        self.before_exchange = []

    def _raise_remote_error(self, records: list[SyncRecord]) -> None:
        failed = [pid for pid, record in enumerate(records) if record.status == Status.FAILED]
        failures = dict(self.objects_on(SYSTEM_CHANNEL, failed))
        self.broken = RemoteError.of(failures)
        raise self.broken

    def _group_name(self, group: int) -> str:
        """' of grid (2, 3) along axis 1' for the split `group` (see
        `create_split`), '' for none."""
        if not group:
            return ""
        made, axis = divmod(group, MAX_AXES)
        name = self.created[made - FIRST_OBJECT_CHANNEL]
        return f" of {name} along axis {axis}" if name.startswith("grid") else f" of a {name}"

    def _raise_mismatch(self, records: list[SyncRecord], site: str) -> None:
        mine = records[self.pid]
        description = f"{mine.describe()}{self._group_name(mine.group)} at {site}"
        if len({(record.objects, record.signature) for record in records}) > 1:
            made = ", ".join(self.created) or "none"
            description += f", having created {mine.objects} data objects ({made})"
        self._drop_outboxes()
        self.post_object(SYSTEM_CHANNEL, range(self.nprocs), description)
        self._swap(pack_record(mine.superstep, Kind.DIAGNOSE, 0, 0, 0, Status.RUNNING, 0))
        sites = [site for _, site in self.objects_on(SYSTEM_CHANNEL)]
        self.broken = SyncMismatchError(sites, mine.superstep)
        raise self.broken
