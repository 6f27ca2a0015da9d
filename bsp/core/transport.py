"""The transport interface: what a backend must provide.

A transport moves opaque bytes.  It knows nothing of Python objects, channels
or the sync rules; the superstep engine (`bsp.core.engine`) builds on it.  The fork
backend (`bsp.fork`) and the MPI backend (`mpi_backend`) implement it.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Final, Mapping, Sequence, Union

from mypy_extensions import mypyc_attr

Buffer = Union[bytes, bytearray, memoryview]
# What an exchange sends, by destination, and what it received, by source:
# only the ranks this one talks to are keys, so that a superstep that talks
# to k ranks costs O(k) passes, not O(p) (docs/performance.md).
Outgoing = Mapping[int, Sequence[Buffer]]
Incoming = dict[int, list[memoryview]]

# The control record every rank contributes to every exchange: this many
# bytes (bsp.core.sync_record's format), the superstep number first (int64,
# little-endian), which a transport may name in a timeout message without
# decoding the rest (see superstep_of).
RECORD_SIZE: Final = 40


def superstep_of(record: bytes | memoryview) -> int:
    """The superstep number a rank's control record carries."""
    return int.from_bytes(record[:8], "little", signed=True)


@mypyc_attr(allow_interpreted_subclasses=True)     # compiled, it has subclasses that are not
class Transport(ABC):
    """One rank's end of a backend."""

    pid: int
    nprocs: int

    @abstractmethod
    def send_buffer(self, nbytes: int, exclusive: bool = False) -> memoryview:
        """Writable space for `nbytes` bytes that will be sent at the next
        exchange.  Data written here and passed back to `exchange` as a frame
        (the very view returned) is not copied again on the way out.
        `exclusive`: the frame will go to one destination only, which may then
        keep this memory as its own rather than copy it."""

    @abstractmethod
    def exchange(self, outgoing: Outgoing, record: bytes) -> tuple[bytes, Incoming]:
        """Send, to each destination d that is a key of `outgoing`, the
        frames `outgoing[d]` (bytes-like, of item size 1) as one block (no
        frames, or frames of no bytes, send nothing); contribute `record`
        (a fixed number of bytes, the same on every rank) to the control
        exchange.

        Every rank calls this the same number of times; it returns once every
        rank has called it.  Returns the records of all ranks concatenated in
        pid order (or, from a transport that learns only whether they agree,
        one record when every rank's is that one, its flags being the or of
        all ranks' and its group leader any rank's; with one rank the two
        are the same), and, keyed by source (in any order), the pieces of
        the block each source that sent this rank something sent:
        memoryviews, in order, each made of whole frames, the first starting
        at an ALIGN-aligned address and every piece at an address congruent
        to its offset in the block, modulo ALIGN.  The pieces belong to the
        caller from then on.  Neither argument nor answer has an entry per
        rank: a superstep that talks to k ranks should cost O(k) work here.
        """

    def array_bulk_from(self) -> int | None:
        """The size from which the data of an array message is best sent as
        a bulk buffer of its own (captured with `send_buffer`) rather than
        copied into the message's stream, for this transport; None: the
        engine's default (bsp.core.plain_arrays.INBAND_LIMIT)."""
        return None

    def close(self) -> None:
        """This rank's run is over: release what this end holds (timers,
        requests, communicators).  The launcher calls it after the rank's
        last exchange; nothing by default."""
