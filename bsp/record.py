"""The sync record: the fixed-size control record every rank contributes to
every exchange, and the rules that turn the records of all ranks into one
verdict.

The verdict is a pure function of the records, so every rank reaches the same
one without further communication.  Records are compared as raw bytes first:
in the common case (every rank calls the same sync, nobody failed) that one
comparison is the whole check.

Fields: the superstep number; the kind of call that ends it (and its root,
for rooted collectives); the number of data objects created so far and a
signature of what they are; the status; and flags, which ranks need not
agree on (GETS: this rank asked for data with a get, so the sync needs a
round of replies).
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
    REPLIES = 4         # the second round of a sync in which a rank got data
    BROADCAST = 10
    REDUCE = 11
    ALLREDUCE = 12
    GATHER = 13
    ALLGATHER = 14
    SCATTER = 15
    ALLTOALL = 16
    SCAN = 17
    HALO = 20           # DistArray operations
    REDISTRIBUTE = 21
    TRANSPOSE = 22
    MATMUL = 23         # a superstep of SUMMA: panels along grid rows and columns


class Status:
    RUNNING = 0
    FAILED = 1          # the rank raised; its traceback is its payload
    RETURNED = 2


class Flags:
    GETS = 1


_KIND_NAMES = {value: name.lower() for name, value in vars(Kind).items() if name.isupper()}
_ROOTED = {Kind.BROADCAST, Kind.REDUCE, Kind.GATHER, Kind.SCATTER}

_FORMAT = struct.Struct("<qiiiIii")
RECORD_SIZE = _FORMAT.size   # 32 bytes
pack_record = _FORMAT.pack   # (superstep, kind, arg, objects, signature, status, flags) -> bytes


class SyncRecord(NamedTuple):
    superstep: int
    kind: int
    arg: int            # the root of a rooted collective, else 0
    objects: int        # data objects created so far
    signature: int      # a hash of what they are
    status: int
    flags: int

    def agreement(self) -> tuple:
        """What every rank must have the same of."""
        return self[:6]

    def describe(self) -> str:
        """What the rank called, for messages: 'sync', 'broadcast(root=1)'."""
        if self.status == Status.RETURNED:
            return "returned from the program"
        name = _KIND_NAMES.get(self.kind, f"call {self.kind}")
        return f"{name}(root={self.arg})" if self.kind in _ROOTED else name


def unpack_all(blob: bytes | memoryview, nprocs: int) -> list[SyncRecord]:
    return [SyncRecord(*_FORMAT.unpack_from(blob, i * RECORD_SIZE)) for i in range(nprocs)]


class Verdict(enum.Enum):
    PROCEED = "proceed"     # every rank called the same thing; deliver
    FINISHED = "finished"   # every rank returned
    FAILED = "failed"       # some rank raised: RemoteError everywhere
    MISMATCH = "mismatch"   # ranks disagree: SyncMismatchError everywhere


def judge(blob: bytes, nprocs: int) -> tuple[Verdict, list[SyncRecord], int]:
    """Apply the sync rules to the records of all ranks (`blob`, in pid
    order); return the verdict, the records, and the flags of all ranks
    or-ed.  Failure wins over disagreement.  (The caller skips this when
    every record is the same as its own: nothing to decide then.)"""
    records = unpack_all(blob, nprocs)
    flags = 0
    for record in records:
        flags |= record.flags
    if any(record.status == Status.FAILED for record in records):
        return Verdict.FAILED, records, flags
    if len({record.agreement() for record in records}) > 1:
        return Verdict.MISMATCH, records, flags
    verdict = Verdict.FINISHED if records[0].status == Status.RETURNED else Verdict.PROCEED
    return verdict, records, flags
