"""world.send(array, dest, copy=False): BSPlib's hpput, a send that is not
copied at the call."""

import numpy as np
import pytest

from bsp.core.buffers import STREAMING_FROM
from bsp.testing import spmd


@spmd(nprocs=[1, 2, 3])
def test_arrays_arrive_as_sent(world):
    right = (world.pid + 1) % world.nprocs
    big = np.arange(300_000, dtype=np.float64) * (world.pid + 1)      # sent from where it lies
    small = np.arange(6, dtype=np.int16).reshape(2, 3) + world.pid   # small: copied with the message
    strided = np.arange(40).reshape(4, 10)[:, ::3]                     # not contiguous: packed at the call
    fortran = np.asfortranarray(np.arange(20_000.0).reshape(100, 200))
    for payload in (big, small, strided, fortran):
        world.send(payload, right, copy=False)
    world.sync()
    left = (world.pid - 1) % world.nprocs
    got = [obj for source, obj in world.messages()]
    assert all(source == left for source, _ in world.messages())
    assert got[0].dtype == np.float64 and (got[0] == np.arange(300_000) * (left + 1)).all()
    assert got[1].dtype == np.int16 and (got[1] == np.arange(6).reshape(2, 3) + left).all()
    assert (got[2] == np.arange(40).reshape(4, 10)[:, ::3]).all()
    assert (got[3] == fortran).all() and got[3].shape == (100, 200)


@spmd(nprocs=[1, 2])
def test_a_large_array_sent_unbuffered_arrives_whole(world):
    """Written into the heap at the exchange (fork), from STREAMING_FROM
    bytes on with streaming stores in the compiled build."""
    length = STREAMING_FROM // 8 + 513
    payload = np.arange(length, dtype=np.float64)[1:] * (world.pid + 1)     # not aligned to 16 bytes
    world.send(payload, (world.pid + 1) % world.nprocs, copy=False)
    world.sync()
    [(source, got)] = world.messages()
    assert got.dtype == np.float64 and np.array_equal(got, np.arange(length, dtype=np.float64)[1:] * (source + 1))


@spmd(nprocs=[2])
def test_other_buffers_arrive_as_numpy_arrays_of_their_items(world):
    other = 1 - world.pid
    world.send(bytearray(b"hpput"), other, copy=False)
    world.send(b"bytes", other, copy=False)
    world.send(memoryview(np.arange(4, dtype=np.float32)), other, copy=False)
    world.sync()
    got = [obj for _, obj in world.messages()]
    assert bytes(got[0]) == b"hpput" and got[0].dtype == np.uint8
    assert bytes(got[1]) == b"bytes"
    assert got[2].dtype == np.float32 and got[2].tolist() == [0, 1, 2, 3]


@spmd(nprocs=[1, 2])
def test_the_bytes_leave_at_the_sync_not_at_the_call(world):
    """Not copied at the call: a large array changed before the sync (a
    broken promise) arrives as it is at the sync."""
    other = (world.pid + 1) % world.nprocs
    payload = np.zeros(1 << 18)
    world.send(payload, other, copy=False)
    payload[:] = 7.0
    world.sync()
    [(_, got)] = world.messages()
    assert (got == 7.0).all()


@spmd(nprocs=[2])
def test_a_payload_that_is_not_a_buffer_is_refused_at_the_call(world):
    with pytest.raises(TypeError, match=r"send with copy=False takes a buffer .*; 'list' is not one"):
        world.send([1.0, 2.0], 1 - world.pid, copy=False)
    with pytest.raises(TypeError, match=r"an array of Python objects \(dtype object\) has none"):
        world.send(np.array([None, 1]), 1 - world.pid, copy=False)
    with pytest.raises(TypeError, match=r"'dict' is not one"):
        world.queue().send({}, 0, copy=False)
    world.sync()
    assert world.messages() == []
