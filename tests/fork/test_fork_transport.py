"""bsp.fork.transport against the transport contract (bsp.core.transport), its
ranks as threads over one shared region: every destination gets its block
whole and aligned, the records of all ranks in pid order, exchange after
exchange; small blocks are copied through the scratch arenas, large
exclusive ones handed over through the heap."""

from __future__ import annotations

import numpy as np
import pytest

from bsp.core.align import ALIGN, aligned
from bsp.fork.transport import HANDOVER_MIN, ForkTransport
from bsp.core.sync_record import Kind, pack_record, unpack_all
from bsp.core.transport import RECORD_SIZE

from forkthreads import on_threads, region_and_barrier


def block_for(source: int, dest: int, exchange: int, size: int) -> bytes:
    return ((np.arange(size) + source * 31 + dest * 7 + exchange) % 251).astype(np.uint8).tobytes()


@pytest.mark.parametrize("size, exclusive", [(0, False), (100, False), (HANDOVER_MIN * 2, False), (HANDOVER_MIN * 2, True)])
def test_blocks_and_records_arrive_exchange_after_exchange(size: int, exclusive: bool) -> None:
    nprocs, exchanges = 3, 3

    def rank(pid: int) -> list[tuple[bytes, list[bytes | None]]]:
        transport = ForkTransport(pid, region, barrier)
        seen = []
        for exchange in range(exchanges):
            outgoing = {}
            for dest in range(nprocs):
                if size == 0 or dest == (pid + exchange) % nprocs:
                    continue                        # nothing for this one in this exchange
                frame = transport.send_buffer(aligned(size), exclusive)
                frame[:size] = block_for(pid, dest, exchange, size)
                outgoing[dest] = [frame]
            records, incoming = transport.exchange(outgoing, bytes([pid + exchange]) * RECORD_SIZE)
            for pieces in incoming.values():
                assert np.frombuffer(pieces[0], np.uint8).ctypes.data % ALIGN == 0
            seen.append((records, [None if source not in incoming
                                   else b"".join(bytes(p) for p in incoming[source])[:size]
                                   for source in range(nprocs)]))
        return seen

    with region_and_barrier(nprocs, 1) as (region, barrier):     # a barrier that sleeps: threads share the GIL
        results = on_threads(nprocs, rank)
    for dest, seen in enumerate(results):
        for exchange, (records, blocks) in enumerate(seen):
            assert records == b"".join(bytes([source + exchange]) * RECORD_SIZE for source in range(nprocs))
            for source, block in enumerate(blocks):
                if size == 0 or dest == (source + exchange) % nprocs:
                    assert block is None
                else:
                    assert block == block_for(source, dest, exchange, size)


@pytest.mark.parametrize("size, exclusive", [(100, False), (HANDOVER_MIN * 2, False), (HANDOVER_MIN * 2, True)])
def test_a_head_and_a_send_buffer_arrive_as_one_block(size: int, exclusive: bool) -> None:
    """A block of a small frame and then a send buffer (one array sent) has
    its head written before the buffer, and arrives as one aligned piece;
    a buffer that goes to several ranks (not exclusive) still reaches each
    whole, behind its own head."""
    nprocs, exchanges = 3, 3

    def rank(pid: int) -> list[list[bytes | None]]:
        transport = ForkTransport(pid, region, barrier)
        seen = []
        for exchange in range(exchanges):
            dests = [dest for dest in range(nprocs) if dest != pid]
            shared = None
            outgoing: dict[int, list[bytes | memoryview]] = {}
            for dest in dests[:1] if exclusive else dests:
                if shared is None or exclusive:
                    shared = transport.send_buffer(aligned(size), exclusive)
                    shared[:size] = block_for(pid, -1, exchange, size)
                outgoing[dest] = [block_for(pid, dest, exchange, ALIGN), shared]
            _, incoming = transport.exchange(outgoing, bytes(RECORD_SIZE))
            pieces = None
            for pieces in incoming.values():
                assert len(pieces) == 1 and np.frombuffer(pieces[0], np.uint8).ctypes.data % ALIGN == 0
            seen.append([None if source not in incoming else bytes(incoming[source][0])[:ALIGN + size]
                         for source in range(nprocs)])
            incoming = pieces = None        # handover regions go back to their senders
        return seen

    with region_and_barrier(nprocs, 1) as (region, barrier):
        results = on_threads(nprocs, rank)
    for dest, seen in enumerate(results):
        for exchange, blocks in enumerate(seen):
            for source, block in enumerate(blocks):
                sent = source != dest and (not exclusive or dest == [d for d in range(nprocs) if d != source][0])
                if sent:
                    assert block == block_for(source, dest, exchange, ALIGN) + block_for(source, -1, exchange, size)
                else:
                    assert block is None


@pytest.mark.parametrize("cores", [1, 4])
def test_agreeing_records_come_back_as_one_with_the_flags_ored_and_each_rank_gets_its_senders(cores: int) -> None:
    """Ranks sharing cores (cores=1: arrivals serialized under the
    barrier's lock) fold their records into one agreement and list
    themselves in their destinations' inboxes; with a core each, every
    record is read.  Either way: records that agree but for the flags and
    the leader are one record, the flags or-ed (or all records, which the
    engine reads the same), and each rank gets the blocks of exactly the
    ranks that sent it one, itself included."""
    nprocs, exchanges = 4, 4
    sends_to = {0: [0, 2], 1: [2], 2: [], 3: [0, 1, 2, 3]}

    def record(pid: int, exchange: int) -> bytes:
        flags = 1 if pid == exchange % nprocs else 0        # one rank asks for a round of replies
        return pack_record(exchange, Kind.SYNC, 0, 1, 7, 0, flags, 0, leader=pid)

    def rank(pid: int) -> list[tuple[bytes, dict[int, bytes]]]:
        transport = ForkTransport(pid, region, barrier)
        seen = []
        for exchange in range(exchanges):
            outgoing = {dest: [block_for(pid, dest, exchange, 40)] for dest in sends_to[pid]}
            records, incoming = transport.exchange(outgoing, record(pid, exchange))
            seen.append((records, {source: bytes(pieces[0])[:40] for source, pieces in incoming.items()}))
        return seen

    with region_and_barrier(nprocs, cores) as (region, barrier):
        results = on_threads(nprocs, rank)
    for pid, seen in enumerate(results):
        for exchange, (records, blocks) in enumerate(seen):
            parsed = unpack_all(records, len(records) // RECORD_SIZE)
            assert all(one.superstep == exchange and one.kind == Kind.SYNC for one in parsed)
            assert any(one.flags == 1 for one in parsed)
            if cores == 1:
                assert len(parsed) == 1 and parsed[0].flags == 1
            senders = [source for source, dests in sends_to.items() if pid in dests]
            assert blocks == {source: block_for(source, pid, exchange, 40) for source in senders}


def test_records_that_differ_come_back_whole_from_ranks_sharing_cores() -> None:
    nprocs = 3

    def rank(pid: int) -> bytes:
        transport = ForkTransport(pid, region, barrier)
        records, _ = transport.exchange({}, pack_record(5, Kind.SYNC if pid else Kind.BROADCAST, 0, 0, 0, 0, 0))
        return records

    with region_and_barrier(nprocs, 1) as (region, barrier):
        results = on_threads(nprocs, rank)
    for records in results:
        assert [one.kind for one in unpack_all(records, nprocs)] == [Kind.BROADCAST, Kind.SYNC, Kind.SYNC]
