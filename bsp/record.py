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


class Kind:
    """What a rank called to end its superstep.  (Plain ints, not an enum:
    this is on the path of every sync.)"""

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


class Status:
    RUNNING = 0
    FAILED = 1          # the rank raised; its traceback is its payload
    RETURNED = 2


_KIND_NAMES = {value: name.lower() for name, value in vars(Kind).items() if name.isupper()}


_FORMAT = struct.Struct("<qiiqi4x")
RECORD_SIZE = _FORMAT.size   # 32 bytes
_STATUS = 24                 # byte offset of the status (small: its first byte says it all)
pack_record = _FORMAT.pack   # (superstep, kind, arg, objects, status) -> bytes


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
        if self.status == Status.RETURNED:
            return "returned from the program"
        name = _KIND_NAMES.get(self.kind, f"call {self.kind}")
        return f"{name}(root={self.arg})" if self.kind in _ROOTED else name


_ROOTED = {Kind.BROADCAST, Kind.REDUCE, Kind.GATHER, Kind.SCATTER}


def unpack_all(blob: bytes | memoryview, nprocs: int) -> list[SyncRecord]:
    return [SyncRecord(*_FORMAT.unpack_from(blob, i * RECORD_SIZE)) for i in range(nprocs)]


class Verdict(enum.Enum):
    PROCEED = "proceed"     # every rank called the same thing; deliver
    FINISHED = "finished"   # every rank returned
    FAILED = "failed"       # some rank raised: RemoteError everywhere
    MISMATCH = "mismatch"   # ranks disagree: SyncMismatchError everywhere


def judge(blob: bytes, mine: bytes, nprocs: int) -> tuple[Verdict, list[SyncRecord] | None]:
    """Apply the sync rules to the records of all ranks (`blob`, in pid
    order), `mine` being this rank's.

    Failure wins over disagreement.  Records identical to this rank's (the
    common case) are decided by one comparison of bytes; otherwise the parsed
    records are returned with the verdict, for the error message.
    """
    if blob == mine * nprocs:
        status = mine[_STATUS]
        if status == Status.RUNNING:
            return Verdict.PROCEED, None
        if status == Status.RETURNED:
            return Verdict.FINISHED, None
    records = unpack_all(blob, nprocs)
    if any(r.status == Status.FAILED for r in records):
        return Verdict.FAILED, records
    return Verdict.MISMATCH, records
