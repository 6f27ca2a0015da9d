"""The sync record: the fixed-size control record every rank contributes to
every exchange, and the rules that turn the records of all ranks into one
verdict.

The verdict is a pure function of the records, so every rank reaches the same
one without further communication.  Records are compared as raw bytes first:
in the common case (every rank calls the same sync, nobody failed) that one
comparison is the whole check.

Fields: the superstep number; the kind of call that ends it (and its root,
for rooted collectives); the number of data objects created so far and a
signature of what they are; the status; flags, which ranks need not
agree on (GETS: this rank asked for data with a get, so the sync needs a
round of replies); and, for a group collective, the identity of the split
its groups come from and the group's leader (the world pid of its first
rank).  Every rank must agree on the split; the root of a rooted group
collective is relative to the group, so only the ranks of one group (those
with the same leader) must agree on it.
"""

from __future__ import annotations

import enum
import struct
from typing import NamedTuple

from bsp.core.transport import RECORD_SIZE as RECORD_SIZE


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
    SPLIT = 18          # world.split: the allgather of colors and keys
    # 20-29: DistArray's own operations (bsp.arrays.superstep_kinds, named with define_kind)
    SAVE = 30           # checkpoints (bsp.checkpoint.save, bsp.checkpoint.restore)
    RESTORE = 31
    # Collectives of groups (bsp.Group): each a world kind + GROUP.
    GROUP_BROADCAST = 110
    GROUP_REDUCE = 111
    GROUP_ALLREDUCE = 112
    GROUP_GATHER = 113
    GROUP_ALLGATHER = 114
    GROUP_SCATTER = 115
    GROUP_ALLTOALL = 116
    GROUP_SCAN = 117


GROUP = Kind.GROUP_BROADCAST - Kind.BROADCAST


class Status:
    RUNNING = 0
    FAILED = 1          # the rank raised; its traceback is its payload
    RETURNED = 2


class Flags:
    GETS = 1


_KIND_NAMES = {value: name.lower().replace("_", " ") for name, value in vars(Kind).items() if name.isupper()}


def define_kind(value: int, name: str) -> int:
    """A kind of call that a data object above the engine defines for its
    own supersteps (DistArray's: bsp.arrays.superstep_kinds), named `name` in mismatch
    messages and profiles; returns `value`.  Raises ValueError for a value
    that already names another kind."""
    if _KIND_NAMES.setdefault(value, name) != name:
        raise ValueError(f"kind {value} is already {_KIND_NAMES[value]!r}, it cannot also be {name!r}")
    return value
_GROUP_KINDS = frozenset(range(Kind.GROUP_BROADCAST, Kind.GROUP_SCAN + 1))
_ROOTED = {kind + offset for kind in (Kind.BROADCAST, Kind.REDUCE, Kind.GATHER, Kind.SCATTER)
           for offset in (0, GROUP)}

RECORD_FORMAT = struct.Struct("<qiiiIiiii")
assert RECORD_FORMAT.size == RECORD_SIZE and RECORD_FORMAT.format.startswith("<q")    # superstep first: superstep_of
# Byte offsets of the two 4-byte fields that need not agree for the records of
# a correct superstep to agree (a transport that answers with one record
# tests the others): the flags, or-ed over the ranks, and a group
# collective's leader, which differs from group to group.
FLAGS_AT = struct.calcsize("<qiiiIi")
LEADER_AT = struct.calcsize("<qiiiIiii")


def flags_of(record: bytes | memoryview) -> int:
    """The flags of a packed record."""
    return int.from_bytes(record[FLAGS_AT:FLAGS_AT + 4], "little")


def with_flags(record: bytes, flags: int) -> bytes:
    """`record` with its flags replaced by `flags`."""
    return record[:FLAGS_AT] + flags.to_bytes(4, "little") + record[FLAGS_AT + 4:]


def agree(one: bytes | memoryview, other: bytes | memoryview) -> bool:
    """Whether two packed records agree but for the flags and the leader."""
    return one[:FLAGS_AT] == other[:FLAGS_AT] and one[FLAGS_AT + 4:LEADER_AT] == other[FLAGS_AT + 4:LEADER_AT]


def pack_record(superstep: int, kind: int, arg: int, objects: int, signature: int, status: int,
                flags: int, group: int = 0, leader: int = 0) -> bytes:
    """The record of one rank, as bytes (fields: see SyncRecord)."""
    return RECORD_FORMAT.pack(superstep, kind, arg, objects, signature, status, flags, group, leader)


class SyncRecord(NamedTuple):
    superstep: int
    kind: int
    arg: int            # the root of a rooted collective, else 0
    objects: int        # data objects created so far
    signature: int      # a hash of what they are
    status: int
    flags: int
    group: int = 0      # a group collective's split (see bsp.objects.collectives.Team), else 0
    leader: int = 0     # the world pid of the first rank of this rank's group

    def agreement(self) -> tuple[int, ...]:
        """What every rank must have the same of (a group collective's root:
        see `group_roots_agree`)."""
        if self.kind in _GROUP_KINDS:
            return (self.superstep, self.kind, self.objects, self.signature, self.status, self.group)
        return self[:6]

    def describe(self) -> str:
        """What the rank called, for messages: 'sync', 'broadcast(root=1)'."""
        if self.status == Status.RETURNED:
            return "returned from the program"
        name = _KIND_NAMES.get(self.kind, f"call {self.kind}")
        return f"{name}(root={self.arg})" if self.kind in _ROOTED else name


def group_roots_agree(records: list[SyncRecord]) -> bool:
    """Whether the ranks of each group name the same root (every rank's
    record being of the same group collective)."""
    roots: dict[int, int] = {}
    return all(roots.setdefault(record.leader, record.arg) == record.arg for record in records)


def unpack_all(blob: bytes | memoryview, nprocs: int) -> list[SyncRecord]:
    return [SyncRecord(*RECORD_FORMAT.unpack_from(blob, i * RECORD_SIZE)) for i in range(nprocs)]


class Verdict(enum.Enum):
    PROCEED = "proceed"     # every rank called the same thing (or every rank returned); deliver
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
    if len({record.agreement() for record in records}) > 1 or not group_roots_agree(records):
        return Verdict.MISMATCH, records, flags
    return Verdict.PROCEED, records, flags
