"""Large data: a 2.25 GiB numpy payload in one superstep, on both backends
(more than MPI's 2 GiB count limit, so the MPI backend must cut it into
chunks).  Skipped where the machine lacks the memory."""

import numpy as np
import psutil
import pytest

from bsp.testing import require_nprocs, run_spmd

SIZE = (2 << 30) + (256 << 20)     # over 2 GiB: MPI counts are C ints
# The sender's array and the copy taken at send, and under MPI the receive
# buffer too, with room to spare.
NEEDED = 4 * SIZE + (2 << 30)
STRIDE = 1 << 20


def send_three_gib(world):
    if world.pid == 0:
        payload = np.zeros(SIZE // 8, np.int64)
        payload[::STRIDE] = np.arange(len(payload[::STRIDE]))       # marks to check the order of the bytes
        payload[-1] = -7
        world.send(payload, 1)
        del payload
    world.sync()
    if world.pid == 1:
        [(source, received)] = world.messages()
        marks = received[::STRIDE]
        return source, received.nbytes, bool((marks == np.arange(len(marks))).all()), int(received[-1])


def test_a_3_gib_payload_in_one_superstep():
    available = psutil.virtual_memory().available
    if available < NEEDED:
        pytest.skip(f"needs {NEEDED >> 30} GiB of free memory, {available >> 30} GiB are free")
    require_nprocs(2)
    results = run_spmd(send_three_gib, 2, timeout=900)
    assert results[1] == (0, SIZE, True, -7)
