"""The hand-written pickle of plain numpy arrays (bsp.core.plain_arrays): it
arrives as numpy's own pickle would, and what it cannot describe goes
through pickle as before."""

import pickle

import numpy as np
import pytest

from bsp.core import plain_arrays
from bsp.core import wire

PLAIN = [
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.arange(100_000, dtype=np.int32),                        # out of band
    np.arange(6, dtype=">i4").reshape(2, 3),                   # non-native byte order
    np.arange(5000, dtype=">f8"),                              # ... out of band
    np.array(3.5),                                             # 0-d
    np.zeros((0, 4), "<f8"),                                   # empty
    np.zeros(0, np.uint8),
    np.asfortranarray(np.arange(24).reshape(2, 3, 4)),         # Fortran order
    np.asfortranarray(np.arange(20_000.0).reshape(100, 200)),  # ... out of band
    np.array([True, False]),
    np.array(["ab", "c"]), np.array([b"xy", b"z"]),
    np.arange(4).astype("datetime64[s]"), np.arange(4, dtype="timedelta64[ms]"),
    np.array([1 + 2j], np.complex64), np.zeros(3, "V5"), np.arange(3, dtype=np.float16),
]

NOT_PLAIN = [
    np.zeros(3, [("a", "<i4"), ("b", ">f8")]),                 # structured
    np.array([{"x": 1}, None], dtype=object),                  # objects
    np.arange(10)[::2],                                        # not contiguous
    np.arange(12).reshape(3, 4)[:, 1:],
    np.ma.masked_array([1, 2], mask=[0, 1]),                   # a subclass
    np.zeros(2, np.dtype(float, metadata={"unit": "m"})),      # metadata
    np.array(["a", "bb"], np.dtypes.StringDType()),            # a new-style dtype
]


def _arrives(array):
    data, buffers = wire.dumps(array)
    # out-of-band buffers reach the receiver as writable memory of its own
    return wire.loads(data, [memoryview(bytearray(buffer)) for buffer in buffers])


@pytest.mark.parametrize("array", PLAIN, ids=lambda array: f"{array.dtype.str}{array.shape}")
def test_plain_arrays_take_the_fast_path_and_arrive_as_numpy_pickles_them(array):
    assert plain_arrays.dumps(array, plain_arrays.INBAND_LIMIT) is not None
    copy = _arrives(array)
    expected = pickle.loads(pickle.dumps(array, 5))
    assert type(copy) is np.ndarray and copy.dtype == expected.dtype and copy.shape == expected.shape
    assert copy.flags.c_contiguous == expected.flags.c_contiguous
    assert copy.flags.f_contiguous == expected.flags.f_contiguous
    assert copy.flags.writeable
    assert np.array_equal(copy, array)
    assert not np.shares_memory(copy, array)


@pytest.mark.parametrize("array", NOT_PLAIN, ids=repr)
def test_other_arrays_go_through_pickle_and_arrive_equal(array):
    assert plain_arrays.dumps(array, plain_arrays.INBAND_LIMIT) is None
    copy = _arrives(array)
    assert type(copy) is type(array) and copy.dtype == array.dtype and copy.dtype.metadata == array.dtype.metadata
    assert np.array_equal(np.asarray(copy), np.asarray(array))


def test_large_plain_arrays_travel_out_of_band_without_a_copy():
    array = np.arange(100_000, dtype=np.float64).reshape(1000, 100)
    data, buffers = wire.dumps(array)
    assert len(data) < 200 and len(buffers) == 1 and buffers[0].nbytes == array.nbytes
    assert np.shares_memory(np.frombuffer(buffers[0], np.uint8), array)


def test_plain_arrays_mix_with_other_messages_in_one_stream():
    objs = [np.arange(3.0), "text", np.arange(10_000), {"a": np.ones(2)}, np.array(7)]
    stream, buffers = bytearray(), []
    for obj in objs:
        data, extra = wire.dumps(obj)
        stream += data
        buffers += extra
    loaded = list(wire.load_stream(bytes(stream), len(objs), buffers))
    assert np.array_equal(loaded[0], objs[0]) and loaded[1] == "text" and np.array_equal(loaded[2], objs[2])
    assert np.array_equal(loaded[3]["a"], np.ones(2)) and loaded[4] == 7 and loaded[4].shape == ()


def _pickled(array, inband_limit):
    data, buffers = plain_arrays.dumps(array, inband_limit)
    return data, [memoryview(bytearray(buffer)) for buffer in buffers]


def _same_array(mine, theirs):
    assert type(mine) is type(theirs) is np.ndarray
    assert mine.dtype == theirs.dtype and mine.dtype.str == theirs.dtype.str
    assert mine.shape == theirs.shape and mine.strides == theirs.strides
    assert mine.flags.writeable == theirs.flags.writeable
    assert mine.flags.c_contiguous == theirs.flags.c_contiguous and mine.flags.f_contiguous == theirs.flags.f_contiguous
    assert type(mine.base) is type(theirs.base)
    assert mine.tobytes() == theirs.tobytes()


@pytest.mark.parametrize("inband_limit", [plain_arrays.INBAND_LIMIT, 1])
@pytest.mark.parametrize("array", PLAIN, ids=lambda array: f"{array.dtype.str}{array.shape}")
def test_the_reader_of_plain_arrays_gives_what_the_unpickler_gives(array, inband_limit):
    """load_at reads `dumps`' pickle, in band or out of band, into the very
    array the unpickler makes of it, and says where the pickle ends."""
    data, buffers = _pickled(array, inband_limit)
    stream = b"\x00" * 5 + data + b"tail"
    found = plain_arrays.load_at(memoryview(stream), 5, iter(buffers))
    assert found is not None and found[1] == 5 + len(data)
    _same_array(found[0], pickle.loads(data, buffers=buffers))
    if buffers:             # out of band: the array is the receiver's buffer, not a copy of it
        assert np.shares_memory(found[0], np.frombuffer(buffers[0], np.uint8))


@pytest.mark.parametrize("array", [np.arange(6.0).reshape(2, 3), np.arange(3000, dtype=">i4"),
                                   np.asfortranarray(np.arange(6).reshape(2, 3))], ids=repr)
@pytest.mark.parametrize("inband_limit", [plain_arrays.INBAND_LIMIT, 1])
def test_a_damaged_plain_array_pickle_reads_as_the_unpickler_reads_it(array, inband_limit):
    """Every truncation, and every byte changed, of a plain array's pickle:
    the reader gives up (and the unpickler reads it), or gives what the
    unpickler gives, or raises what the unpickler raises."""
    data, buffers = _pickled(array, inband_limit)
    damaged = [data[:cut] for cut in range(len(data))]
    head = len(data) if inband_limit == 1 else len(data) - array.nbytes
    for position in [*range(min(head, len(data))), *range(len(data) - 4, len(data))]:
        for flip in (0x01, 0xFF):
            changed = bytearray(data)
            changed[position] ^= flip
            damaged.append(bytes(changed))
    taken = 0
    for stream in damaged:
        try:
            mine = plain_arrays.load_at(memoryview(stream), 0, iter(list(buffers)))
        except Exception as error:          # noqa: BLE001 -- compared with the unpickler's
            with pytest.raises(type(error)):
                pickle.loads(stream, buffers=list(buffers))
            continue
        if mine is not None:
            taken += 1
            _same_array(mine[0], pickle.loads(stream, buffers=list(buffers)))
    assert taken >= 1           # some changes (a byte of the data) still read as arrays


def test_streams_of_plain_arrays_and_other_messages_load_in_order():
    """Arrays in band and out of band, among pickled objects and a batch of
    floats, in one stream: each comes back where it was."""
    objs = [np.arange(3.0), np.arange(10_000), "text", np.array(7), np.arange(2000, dtype=">f8"), (1, 2),
            np.asfortranarray(np.arange(6).reshape(2, 3))]
    stream, buffers = bytearray(), []
    for obj in objs:
        data, extra = wire.dumps(obj, 4096)
        stream += data
        buffers += [memoryview(bytearray(buffer)) for buffer in extra]
    stream += wire.dumps_floats([0.5, -0.0])
    loaded = wire.load_objects(memoryview(bytes(stream)), len(objs) + 2, buffers)
    assert len(loaded) == len(objs) + 2 and loaded[-2:] == [0.5, -0.0]
    for got, sent in zip(loaded, objs):
        if isinstance(sent, np.ndarray):
            assert type(got) is np.ndarray and got.dtype.str == sent.dtype.str and got.shape == sent.shape
            assert got.flags.f_contiguous == sent.flags.f_contiguous and got.flags.writeable
            assert np.array_equal(got, sent) and not np.shares_memory(got, sent)
        else:
            assert got == sent
