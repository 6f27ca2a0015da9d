"""The sync record: the fixed-size control record every rank contributes to
every exchange, and the rules that turn the records of all ranks into one
verdict.

The verdict is a pure function of the records, so every rank reaches the same
one without further communication.  Records are compared as raw bytes first:
in the common case (every rank calls the same sync, nobody failed) that one
comparison is the whole check.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple


class Kind(enum.IntEnum):
    """What a rank called to end its superstep."""

    SYNC = 1
    EXIT = 2            # returned from the program (or failed: see Status)
    DIAGNOSE = 3        # the exchange of call sites after a mismatch
    BROADCAST = 10
    REDUCE = 11
    ALLREDUCE = 12
    GATHER = 13
    ALLGATHER = 14
    SCATTER = 15
    ALLTOALL = 16
    SCAN = 17


class Status(enum.IntEnum):
    RUNNING = 0
    FAILED = 1          # the rank raised; its traceback is its payload
    RETURNED = 2


_FORMAT = struct.Struct("<qiiqi4x")
RECORD_SIZE = _FORMAT.size   # 32 bytes


class SyncRecord(NamedTuple):
    superstep: int
    kind: int
    arg: int            # the root of a rooted collective, else 0
    objects: int        # data objects created so far
    status: int

    def pack(self) -> bytes:
        return _FORMAT.pack(*self)

    def describe(self) -> str:
        """What the rank called, for messages: 'sync', 'broadcast(root=1)'."""
        kind = Kind(self.kind)
        if self.status == Status.RETURNED:
            return "returned from the program"
        name = kind.name.lower()
        return f"{name}(root={self.arg})" if kind in _ROOTED else name


_ROOTED = {Kind.BROADCAST, Kind.REDUCE, Kind.GATHER, Kind.SCATTER}


def unpack_all(blob: bytes | memoryview, nprocs: int) -> list[SyncRecord]:
    return [SyncRecord(*_FORMAT.unpack_from(blob, i * RECORD_SIZE)) for i in range(nprocs)]


class Verdict(enum.Enum):
    PROCEED = "proceed"     # every rank called the same thing; deliver
    FINISHED = "finished"   # every rank returned
    FAILED = "failed"       # some rank raised: RemoteError everywhere
    MISMATCH = "mismatch"   # ranks disagree: SyncMismatchError everywhere


def judge(blob: bytes, nprocs: int) -> tuple[Verdict, list[SyncRecord] | None]:
    """Apply the sync rules to the records of all ranks (`blob`, in pid order).

    Failure wins over disagreement.  Identical records (the common case) are
    decided by one comparison of bytes; otherwise the parsed records are
    returned with the verdict, for the error message.
    """
    first = blob[:RECORD_SIZE]
    if blob == first * nprocs:
        status = _FORMAT.unpack_from(first)[4]
        if status == Status.RUNNING:
            return Verdict.PROCEED, None
        if status == Status.RETURNED:
            return Verdict.FINISHED, None
    records = unpack_all(blob, nprocs)
    if any(r.status == Status.FAILED for r in records):
        return Verdict.FAILED, records
    return Verdict.MISMATCH, records
