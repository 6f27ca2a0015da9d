"""The wire format: pickle 5 with out-of-band buffers, dill as the fallback."""

import pickle
import struct

import numpy as np
import pytest

from bsp.core import wire
from bsp.core.mailbox import Section


def test_large_numpy_data_travels_out_of_band_without_a_copy():
    array = np.arange(100_000, dtype=np.float64)
    data, buffers = wire.dumps(array)
    assert len(data) < 1000
    assert len(buffers) == 1 and buffers[0].nbytes == array.nbytes
    assert np.shares_memory(np.frombuffer(buffers[0], np.float64), array)
    assert np.array_equal(wire.loads(data, buffers), array)


def test_small_buffers_stay_in_band():
    data, buffers = wire.dumps(np.arange(10))
    assert buffers == []
    assert np.array_equal(wire.loads(data), np.arange(10))


def test_plain_data_uses_pickle_not_dill():
    data, _ = wire.dumps({"a": [1, 2.5, "x"]})
    assert b"dill" not in data
    assert pickle.loads(data) == {"a": [1, 2.5, "x"]}


def test_lambdas_go_through_dill_with_the_rest_of_their_message():
    array = np.ones(50_000)
    data, buffers = wire.dumps((lambda: 7, array))
    assert b"_undill" in data and buffers == []
    function, copy = wire.loads(data, buffers)
    assert function() == 7 and np.array_equal(copy, array)


def test_streams_of_messages():
    arrays = [np.full(10_000, i) for i in range(3)]
    stream, buffers = bytearray(), []
    for obj in ["a", arrays[0], (arrays[1], lambda: 1), arrays[2]]:
        data, extra = wire.dumps(obj)
        stream += data
        buffers += extra
    loaded = list(wire.load_stream(bytes(stream), 4, buffers))
    assert loaded[0] == "a" and np.array_equal(loaded[3], arrays[2]) and loaded[2][1]() == 1


def test_self_referencing_payloads_round_trip():
    cycle = []
    cycle.append(cycle)
    data, buffers = wire.dumps(cycle)
    copy = wire.loads(data, buffers)
    assert copy[0] is copy


def test_too_deep_nesting_is_a_value_error():
    deep = []
    for _ in range(100_000):
        deep = [deep]
    with pytest.raises(ValueError, match="nested too deeply"):
        wire.dumps(deep)


def test_frames_round_trip_through_one_block():
    obj = {"array": np.arange(20_000), "text": "hi"}
    block = b"".join(bytes(memoryview(frame).cast("B")) for frame in wire.to_frames(obj))
    copy = wire.from_block(block)
    assert copy["text"] == "hi" and np.array_equal(copy["array"], obj["array"])


def test_messages_that_need_dill_keep_the_byte_order_of_their_arrays():
    # as plain pickle does (protocol 5): dill's own reduce of arrays would
    # rebuild them in native byte order, empty ones included
    arrays = [np.arange(6, dtype=">i4").reshape(2, 3), np.zeros((0, 4), ">f8"), np.arange(3, dtype="<u2")]
    data, buffers = wire.dumps((lambda: 1, *arrays))
    _, *copies = wire.loads(data, buffers)
    assert [copy.dtype for copy in copies] == [array.dtype for array in arrays]
    assert all(np.array_equal(copy, array) for copy, array in zip(copies, arrays))


def test_a_batch_of_immutable_messages_reads_as_that_many_messages():
    stream = wire.dumps_batch([1, "two", (3, 4.0)]) + wire.dumps([5])[0] + wire.dumps_batch([None, b"six"])
    assert list(wire.load_stream(stream, 6)) == [1, "two", (3, 4.0), [5], None, b"six"]
    assert list(wire.load_stream(wire.dumps("alone")[0], 1)) == ["alone"]


def test_a_batch_of_floats_reads_back_bit_for_bit_between_other_messages():
    floats = [0.5, -0.0, float("inf"), float("-inf"), float("nan"), 1e308, 5e-324, -2.0**-1074]
    bits = [struct.pack("<d", x) for x in floats]
    stream = wire.dumps_floats(floats) + wire.dumps([5])[0] + wire.dumps_floats([1.5, 2.5])
    read = list(wire.load_stream(stream, len(floats) + 3))
    assert [struct.pack("<d", x) for x in read[:len(floats)]] == bits
    assert read[len(floats):] == [[5], 1.5, 2.5]
    alone = wire.load_stream(memoryview(bytearray(b"x" + wire.dumps_floats(floats)))[1:], len(floats))
    assert [struct.pack("<d", x) for x in alone] == bits       # at an odd address too
    portable = wire.unpack_floats(memoryview(wire.dumps_floats(floats))[9:], len(floats))
    assert [struct.pack("<d", x) for x in portable] == bits    # as a big-endian machine reads them
    with pytest.raises(ValueError, match="damaged"):
        list(wire.load_stream(wire.dumps_floats(floats)[:-3], len(floats)))     # cut short


def test_a_section_of_floats_alone_sends_their_bytes_and_any_other_message_a_pickle():
    floats, mixed = Section(), Section()
    for x in (1.5, 2.5, 3.5):
        floats.defer(x)
        mixed.defer(x)
    mixed.defer(4)
    floats.flush()
    mixed.flush()
    assert bytes(floats.stream) == wire.dumps_floats([1.5, 2.5, 3.5])
    assert bytes(mixed.stream) == wire.dumps_batch([1.5, 2.5, 3.5, 4])
    assert type(list(wire.load_stream(mixed.stream, 4))[3]) is int


def test_only_immutable_messages_are_deferrable():
    assert all(map(wire.deferrable, [1, 2.5, 1j, True, "s", b"b", None, (1, "a", None)]))
    assert not any(map(wire.deferrable, [[1], {}, (1, [2]), bytearray(b"x"), tuple(range(9)), type("S", (str,), {})("s")]))
