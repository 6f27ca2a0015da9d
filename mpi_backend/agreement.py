"""Whether every rank contributed the same sync record, in O(log p).

One allreduce of 2 x RECORD_SIZE bytes with bitwise AND, of each rank's
record r followed by its complement ~r, gives AND(r) and AND(~r) = ~OR(r)
of every bit of every rank's record.  The records agree exactly where
AND(r) == OR(r).  Two fields need not agree and are left out of the test:
the flags (their OR is the answer: GETS, "some rank needs a round of
replies") and the leader of a group collective (ranks of different groups
have different leaders).

When the records agree, every rank knows every record without having
received any: each is the agreed one, with the flags of all ranks or-ed
(the leader aside, which only matters to the sync rules when roots differ,
and they do not).  When they do not, which only happens when a program fails
or diverges, one Allgather of the records follows, so that the sync rules
(`bsp.core.sync_record.judge`) see every rank's own record, as before.  Every rank
takes the same branch: they all see the same allreduce result.

Costs per superstep: one allreduce of 80 bytes (ceil(log2 p) rounds with
recursive doubling), plus an O(p) Allgather only on the error path.
"""

from __future__ import annotations

from typing import Any

from bsp.core.sync_record import FLAGS_AT as _FLAGS, LEADER_AT as _LEADER, with_flags
from bsp.core.transport import RECORD_SIZE

from mpi4py import MPI    # imported after mpi_backend.transport has set the thread level

_ONES = (1 << (8 * RECORD_SIZE)) - 1
_INVERT = bytes(255 - byte for byte in range(256))      # bytes.translate table: each byte's complement
_TESTED = _ONES ^ ((((1 << 32) - 1) << (8 * _FLAGS)) | (((1 << 32) - 1) << (8 * _LEADER)))


class Agreement:
    """The allreduce of the sync record on `comm`, started and completed in
    two steps, so that the caller can serve messages while it runs."""

    def __init__(self, comm: MPI.Comm):
        self._comm = comm
        self._send = bytearray(2 * RECORD_SIZE)
        self._result = bytearray(2 * RECORD_SIZE)
        self._buffers = ([self._send, MPI.BYTE], [self._result, MPI.BYTE], MPI.BAND)
        self._request: Any = None
        try:        # a persistent collective (MPI 4): set up once, cheaper to start
            self._persistent: MPI.Prequest | None = comm.Allreduce_init(*self._buffers)
        except (AttributeError, NotImplementedError, MPI.Exception):
            self._persistent = None

    def start(self, record: bytes) -> Any:
        """Contribute `record` (RECORD_SIZE bytes); returns the request to
        test for completion."""
        self._send[:RECORD_SIZE] = record
        self._send[RECORD_SIZE:] = record.translate(_INVERT)
        if self._persistent is None:
            self._request = self._comm.Iallreduce(*self._buffers)
        else:
            self._request = self._persistent
            self._request.Start()
        return self._request

    def done(self) -> bool:
        """Whether the allreduce last started has completed (it has once a
        test of its request said so)."""
        return self._request is None or self._request.Test()

    def records(self, record: bytes, nprocs: int) -> bytes:
        """After completion: the records of all ranks in pid order, or the
        one record they all share (see `bsp.core.transport.Transport.exchange`
        and the module's docstring)."""
        if self._result[:RECORD_SIZE] == self._result[RECORD_SIZE:].translate(_INVERT):
            return record               # AND == OR: every record the same, flags too (the common case)
        anded = int.from_bytes(self._result[:RECORD_SIZE], "little")
        ored = int.from_bytes(self._result[RECORD_SIZE:], "little") ^ _ONES
        if (anded ^ ored) & _TESTED:
            found = bytearray(nprocs * RECORD_SIZE)
            self._comm.Allgather([record, MPI.BYTE], [found, MPI.BYTE])
            return bytes(found)
        return with_flags(record, (ored >> (8 * _FLAGS)) & 0xFFFFFFFF)

    def close(self) -> None:
        # A pending request cannot be freed (MPICH crashes): it is left to
        # the end of the job, which a lost run brings soon.
        if self._persistent is not None and self.done():
            self._persistent.Free()
