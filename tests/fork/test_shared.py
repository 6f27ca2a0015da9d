"""bsp.fork.shared: the layout of a fork run's shared region (records,
scratch arenas and heaps that do not overlap) and what the supervisor reads
from it (a rank's superstep, its progress counters)."""

from __future__ import annotations

import pytest

from bsp.fork.shared import SharedRegion
from bsp.core.sync_record import Kind, Status, pack_record
from bsp.core.transport import RECORD_SIZE


@pytest.fixture
def region():
    shared = SharedRegion(3)
    yield shared
    shared.close()


def test_the_areas_of_the_ranks_do_not_overlap_and_lie_past_the_control_block(region: SharedRegion) -> None:
    records = [region.records(half) for half in (0, 1)]
    assert records == [(0, 3 * RECORD_SIZE), (3 * RECORD_SIZE, 6 * RECORD_SIZE)]
    starts = sorted([region.scratch(pid, half) for pid in range(3) for half in (0, 1)] +
                    [region.heap(pid) for pid in range(3)])
    assert starts[0] >= records[1][1] and starts[0] % 64 == 0
    assert all(later - earlier == region.area_bytes for earlier, later in zip(starts, starts[1:]))
    assert starts[-1] + region.area_bytes <= len(region.map)


def test_the_supervisor_reads_the_superstep_a_rank_wrote_for_an_exchange(region: SharedRegion) -> None:
    for exchange, superstep in ((1, 7), (2, 8)):        # exchanges alternate between the two halves
        start, _ = region.records((exchange - 1) % 2)
        offset = start + 2 * RECORD_SIZE
        region.map[offset:offset + RECORD_SIZE] = pack_record(superstep, Kind.SYNC, 0, 0, 0, Status.RUNNING, 0)
    assert (region.superstep(1, 2), region.superstep(2, 2)) == (7, 8)


def test_progress_counters_start_at_zero_and_show_what_ranks_write(region: SharedRegion) -> None:
    assert region.progress() == ([0, 0, 0], [0, 0, 0])
    words = region.words()
    words[region.ARRIVED + 1] = 5
    words[region.DEPARTED + 1] = 4
    words.release()
    assert region.progress() == ([0, 5, 0], [0, 4, 0])
