"""Framing (bsp.core.mailbox): what an Outbox frames for one destination comes
back out of `unpack` channel by channel, streams and bulk buffers intact and
bulk buffers aligned, whether the block arrives whole or in pieces of whole
frames."""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings, strategies as st

from bsp.core.align import ALIGN, aligned, padding
from bsp.core.buffers import aligned_empty
from bsp.core.mailbox import Outbox, unpack

SECTIONS = st.dictionaries(st.integers(0, 40),
                           st.tuples(st.binary(max_size=300), st.integers(0, 5),
                                     st.lists(st.binary(max_size=200), max_size=4)), max_size=5)


def fill(sections: dict[int, tuple[bytes, int, list[bytes]]], uncopied: bool) -> Outbox:
    outbox = Outbox()
    for channel, (stream, count, bulk) in sections.items():
        section = outbox.section(channel)
        section.stream += stream
        section.count = count
        for data in bulk:
            if uncopied:
                section.add_uncopied(memoryview(data))
            else:
                space = aligned_empty(aligned(len(data))).data
                space[:len(data)] = data
                section.add_bulk(space, len(data))
    return outbox


def received(frames: list[bytes | bytearray | memoryview], cut: int | None) -> list[memoryview]:
    """The block as a transport delivers it (see bsp.core.transport): one aligned
    copy, or two pieces of whole frames, split after frame number `cut`,
    each at an address congruent to its offset in the block."""
    sizes = [memoryview(frame).nbytes for frame in frames]
    block = b"".join(bytes(frame) for frame in frames)
    whole = aligned_empty(len(block))
    whole[:] = np.frombuffer(block, np.uint8)
    if cut is None or not 0 < cut % len(frames):
        return [whole.data]
    boundary = sum(sizes[:cut % len(frames)])
    return [whole[:boundary].data, whole[boundary:].data]


@settings(max_examples=60, deadline=None)
@given(sections=SECTIONS, uncopied=st.booleans(), cut=st.one_of(st.none(), st.integers(1, 40)))
def test_an_outbox_round_trips_through_unpack(sections: dict[int, tuple[bytes, int, list[bytes]]],
                                              uncopied: bool, cut: int | None) -> None:
    frames = fill(sections, uncopied).frames()
    arrivals = dict(unpack(3, received(frames, cut)))
    assert sorted(arrivals) == sorted(sections)
    for channel, (stream, count, bulk) in sections.items():
        arrival = arrivals[channel]
        assert arrival.source == 3 and arrival.count == count and bytes(arrival.stream) == stream
        assert [bytes(view) for view in arrival.bulk] == bulk
        for view in arrival.bulk:
            if view.nbytes:
                assert np.frombuffer(view, np.uint8).ctypes.data % ALIGN == 0


def test_padding_reaches_the_next_boundary() -> None:
    assert [padding(n) for n in (0, 1, ALIGN - 1, ALIGN, ALIGN + 1)] == [0, ALIGN - 1, 1, 0, ALIGN - 1]
    assert [aligned(n) for n in (0, 1, ALIGN, ALIGN + 1)] == [0, ALIGN, ALIGN, 2 * ALIGN]
