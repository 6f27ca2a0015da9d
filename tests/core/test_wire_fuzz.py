"""Fuzzing the wire with object graphs drawn the way programs make them
(payloads.py), each checked to arrive equal to its own pickle round trip,
with its identity structure, sharing nothing with other payloads or with
what was sent (structure.py).

- Without processes: streams of pickles (`wire.load_stream`), blocks of
  frames (`wire.to_frames` / `from_block`, as outcomes travel), and the
  engine's framing of object and raw messages on several channels, over a
  loopback transport.  Cheap, so thousands of payloads; the same on every
  backend, so run on the fork leg only.
- Over every channel of real runs, on both backends (channels.py): world.send,
  queues, Var puts and get replies, Coarray headers, every collective,
  bsp.run's arguments and results; many payload sequences per run.

scripts/wire_fuzz runs the same at volume.
"""

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bsp.core import wire
from bsp.core.buffers import aligned_empty
from bsp.core.engine import Engine
from bsp.core.sync_record import Kind
from bsp.core.transport import Transport
from channels import indices, plans, run_plan
from payloads import payload_sequences, payloads
from structure import assert_private, assert_same, mutable_objects, round_trip

FAST = settings(deadline=None, suppress_health_check=list(HealthCheck))


def captured(buffers):
    """Copies of a message's out-of-band buffers, as the engine takes them
    when a message is queued."""
    return [memoryview(bytearray(buffer)) for buffer in buffers]


@pytest.mark.mpi_skip
@settings(FAST, max_examples=500)
@given(st.lists(payloads(), min_size=1, max_size=8))
def test_a_stream_of_payloads_decodes_each_as_its_own_round_trip(sequence):
    stream, buffers = bytearray(), []
    for payload in sequence:
        data, bulk = wire.dumps(payload)
        stream += data
        buffers += captured(bulk)
    arrived = list(wire.load_stream(bytes(stream), len(sequence), buffers))
    assert_same(arrived, [round_trip(payload) for payload in sequence])
    assert_private(arrived, mutable_objects(sequence))


@pytest.mark.mpi_skip
@settings(FAST, max_examples=150)
@given(payload_sequences())
def test_serialized_payloads_inside_one_block(sequence):
    # as results travel: each serialized on its own, all in one block
    frames = wire.to_frames([wire.Serialized.of(payload) for payload in sequence])
    block = bytearray().join(memoryview(frame).cast("B") for frame in frames)
    arrived = [serialized.load() for serialized in wire.from_block(block)]
    assert_same(arrived, [round_trip(payload) for payload in sequence])
    assert_private(arrived, mutable_objects(sequence))


class Loopback(Transport):
    """A transport of one rank: what it sends comes back to it, copied into
    memory of its own."""

    def __init__(self):
        # instance attributes: compiled (setup.py), Transport's pid and nprocs
        # are fields that a class attribute of a subclass would not fill
        self.pid, self.nprocs = 0, 1

    def send_buffer(self, nbytes, exclusive=False):
        return memoryview(aligned_empty(nbytes))

    def exchange(self, outgoing, record):
        frames = [memoryview(frame).cast("B") for frame in outgoing.get(0, ())]
        if not frames:
            return record, {}
        block = aligned_empty(sum(frame.nbytes for frame in frames))
        block[:] = np.frombuffer(b"".join(frames), np.uint8)
        return record, {0: [memoryview(block)]}


@pytest.mark.mpi_skip
@settings(FAST, max_examples=250)
@given(st.lists(st.tuples(st.integers(1, 3), payloads()), min_size=1, max_size=8),
       st.lists(st.tuples(st.one_of(indices(), payloads()), st.one_of(st.none(), st.binary(max_size=70))),
                max_size=4))
def test_object_and_raw_messages_on_several_channels(posts, raw_posts):
    engine = Engine(Loopback())
    for channel, payload in posts:
        engine.post_object(channel, [0], payload)
    for header, data in raw_posts:
        engine.post_raw(4, [0], header, [] if data is None else [memoryview(data)])
    engine.exchange(Kind.SYNC)
    raw = list(engine.raw_messages(engine.arrivals(4)))
    arrived = [[obj for _, obj in engine.objects_on(channel)] for channel in (1, 2, 3)]
    arrived.append([header for _, header, _ in raw])
    expected = [[round_trip(payload) for number, payload in posts if number == channel] for channel in (1, 2, 3)]
    expected.append([round_trip(header) for header, _ in raw_posts])
    assert_same(arrived, expected)
    assert_private(arrived, mutable_objects((posts, raw_posts)))
    assert [bytes(frames[0]) if frames else None for _, _, frames in raw] == [data for _, data in raw_posts]


# Over every channel of real runs: each example is one bsp.run of up to eight
# supersteps, which sends about 16 payload sequences (see count_sequences).
@settings(FAST, max_examples=40)
@given(plans(max_steps=8, max_sends=10))
def test_payloads_over_every_channel_of_a_run(plan):
    run_plan(plan)
