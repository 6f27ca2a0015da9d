"""The sync rules: a failing rank, ranks that disagree, a dying rank, bad
payloads.  Each ends in its documented error, on every rank, without a hang;
conftest checks that nothing is left behind after each test."""

import os
import signal
import socket
import threading

import pytest

import bsp
from bsp.launch.bsp_run import choose_backend, run_with_timeout
from bsp.testing import require_nprocs

LIMIT = 60.0     # a run that hangs fails with RunTimeoutError instead (fork)


def run(program, *args, nprocs):
    require_nprocs(nprocs)
    return run_with_timeout(program, args, {}, nprocs=nprocs, timeout=LIMIT)


def record_error_then_reraise(directory, world, call):
    """Run call(); if it raises a BSPError, note its type on disk, then re-raise."""
    try:
        call()
    except bsp.BSPError as error:
        (directory / f"rank{world.pid}").write_text(f"{type(error).__name__}\n{error}")
        raise


def notes(directory, nprocs):
    return {pid: (directory / f"rank{pid}").read_text() for pid in range(nprocs)
            if (directory / f"rank{pid}").exists()}


def test_a_rank_that_raises_makes_every_other_rank_raise_at_its_next_sync(tmp_path):
    def program(world):
        world.sync()
        if world.pid == 2:
            raise ValueError("rank two is unhappy")
        record_error_then_reraise(tmp_path, world, world.sync)

    with pytest.raises(bsp.RemoteError) as caught:
        run(program, nprocs=4)
    assert caught.value.rank == 2
    assert "ValueError: rank two is unhappy" in caught.value.remote_traceback
    assert 'raise ValueError("rank two is unhappy")' in caught.value.remote_traceback
    seen = notes(tmp_path, 4)
    assert sorted(seen) == [0, 1, 3]
    assert all(note.startswith("RemoteError\nrank 2 raised ValueError") for note in seen.values())


def test_every_failing_rank_is_reported():
    def program(world):
        if world.pid % 2:
            raise KeyError(f"odd rank {world.pid}")
        world.sync()

    with pytest.raises(bsp.RemoteError) as caught:
        run(program, nprocs=4)
    assert caught.value.rank == 1
    assert sorted(caught.value.failures) == [1, 3]
    assert "odd rank 3" in caught.value.failures[3]


def test_a_failure_during_a_collective_reaches_the_ranks_in_it():
    def program(world):
        if world.pid == 0:
            raise RuntimeError("no sum for you")
        return world.allreduce(1)

    with pytest.raises(bsp.RemoteError, match="RuntimeError: no sum for you"):
        run(program, nprocs=3)


def test_sync_against_a_collective_is_a_mismatch_on_every_rank(tmp_path):
    def program(world):
        if world.pid == 1:
            record_error_then_reraise(tmp_path, world, lambda: world.allreduce(5))   # LINE-COLLECTIVE
        else:
            record_error_then_reraise(tmp_path, world, lambda: world.sync())         # LINE-SYNC

    with pytest.raises(bsp.SyncMismatchError) as caught:
        run(program, nprocs=3)
    source = open(__file__).read().splitlines()
    line = {tag: source.index(next(l for l in source if l.endswith(tag))) + 1
            for tag in ("# LINE-COLLECTIVE", "# LINE-SYNC")}
    sites = caught.value.call_sites
    assert sites[1].startswith("allreduce at ") and f"{__file__}:{line['# LINE-COLLECTIVE']}" in sites[1]
    for pid in (0, 2):
        assert sites[pid].startswith("sync at ") and f"{__file__}:{line['# LINE-SYNC']}" in sites[pid]
    assert sorted(notes(tmp_path, 3)) == [0, 1, 2]
    assert all(note.startswith("SyncMismatchError") for note in notes(tmp_path, 3).values())


def test_a_rank_that_returns_while_others_sync_is_a_mismatch():
    def program(world):
        if world.pid == 0:
            return "done early"
        world.sync()

    with pytest.raises(bsp.SyncMismatchError) as caught:
        run(program, nprocs=2)
    assert caught.value.call_sites[0].startswith("returned from the program at ")
    assert caught.value.call_sites[1].startswith("sync at ")


def test_collectives_with_different_roots_are_a_mismatch():
    def program(world):
        world.broadcast("x", root=world.pid % 2)

    with pytest.raises(bsp.SyncMismatchError, match=r"broadcast\(root=0\).*\n.*broadcast\(root=1\)"):
        run(program, nprocs=2)


def test_a_rank_that_creates_a_data_object_the_others_do_not_is_a_mismatch():
    def program(world):
        if world.pid == 1:
            world.queue()
        world.sync()

    with pytest.raises(bsp.SyncMismatchError, match=r"having created 1 data objects \(queue\)"):
        run(program, nprocs=3)


def test_after_an_error_every_later_call_raises_it_again_without_hanging():
    def program(world):
        if world.pid == 0:
            raise ValueError("first")
        try:
            world.sync()
        except bsp.RemoteError:
            pass
        world.sync()            # must raise again at once, not wait for rank 0

    with pytest.raises(bsp.RemoteError, match="ValueError: first"):
        run(program, nprocs=2)


# Under MPI the launcher ends the whole job when a process dies.
@pytest.mark.mpi_skip
@pytest.mark.parametrize("nprocs", [2, 4])
def test_a_killed_rank_is_a_rank_died_error_naming_rank_and_signal(nprocs):
    def program(world):
        world.sync()
        if world.pid == nprocs - 1:
            os.kill(os.getpid(), signal.SIGKILL)
        world.sync()

    with pytest.raises(bsp.RankDiedError, match=f"rank {nprocs - 1} died: killed by signal 9 \\(SIGKILL\\)"):
        run(program, nprocs=nprocs)


@pytest.mark.mpi_skip
def test_a_rank_that_exits_is_a_rank_died_error_with_its_status():
    def program(world):
        if world.pid == 0:
            os._exit(3)
        world.sync()

    with pytest.raises(bsp.RankDiedError) as caught:
        run(program, nprocs=3)
    assert caught.value.rank == 0 and "exited with status 3" in str(caught.value)


def test_an_unpicklable_payload_raises_type_error_on_the_sender(tmp_path):
    def program(world):
        if world.pid == 1:
            try:
                world.send((x for x in range(3)), 0)
            except TypeError as error:
                (tmp_path / "error").write_text(str(error))
                raise
        world.sync()

    with pytest.raises(bsp.RemoteError) as caught:
        run(program, nprocs=3)
    assert caught.value.rank == 1 and "TypeError" in caught.value.remote_traceback
    assert "'generator' object" in (tmp_path / "error").read_text()


@pytest.mark.parametrize("payload, name", [
    (lambda: socket.socket(), "'socket' object"),
    (lambda: [1, {"deep": (x for x in [])}], "'generator' object"),
])
def test_type_errors_name_the_type_that_cannot_travel(payload, name):
    def program(world):
        obj = payload()
        with pytest.raises(TypeError, match=name):
            world.send(obj, 0)
        if hasattr(obj, "close"):
            obj.close()
    run(program, nprocs=2)


def test_dill_carries_what_pickle_refuses():
    def program(world, path):
        def closure(x, offset=world.pid):
            return x + offset
        world.send((closure, threading.Lock(), open(path)), 0)
        world.sync()
        return [(function(100), lock.acquire(), handle.read()) for _, (function, lock, handle) in world.messages()]

    path = __file__
    results = run(program, path, nprocs=2)
    text = open(path).read()
    assert results[0] == [(100, True, text), (101, True, text)]


@pytest.mark.parametrize("dest", [-1, 2, 99])
def test_a_dest_out_of_range_is_a_value_error_at_the_send(dest):
    def program(world):
        with pytest.raises(ValueError, match=f"dest {dest} is out of range: pids run from 0 to 1"):
            world.send("x", dest)
        with pytest.raises(TypeError, match="dest must be an integer pid, not 'str'"):
            world.send("x", "1")
        world.sync()
    run(program, nprocs=2)


def test_a_return_value_that_cannot_be_sent_is_the_ranks_failure():
    def program(world):
        return (x for x in []) if world.pid == 1 else 0

    with pytest.raises(bsp.RemoteError, match="rank 1 raised TypeError: the program's return value cannot be sent"):
        run(program, nprocs=2)


def test_a_world_cannot_be_sent():
    def program(world):
        with pytest.raises(TypeError, match="a World cannot be sent"):
            world.send(world, 0)
    run(program, nprocs=1)


@pytest.mark.mpi_skip
def test_a_run_that_outlives_its_timeout_names_the_ranks_at_fault():
    def program(world):
        world.sync()
        if world.pid == 1:
            threading.Event().wait()        # never reaches the next sync
        world.sync()

    with pytest.raises(bsp.RunTimeoutError) as caught:
        run_with_timeout(program, (), {}, nprocs=3, backend="fork", timeout=1.0)
    assert caught.value.computing == [1]
    assert caught.value.waiting == [0, 2]
    assert "ranks [1] had not reached the sync of superstep 1" in str(caught.value)


def misuses_a_coarray(world):
    xs = world.coarray(4)
    world.sync()
    xs.put(1.0, (world.pid + 1) % world.nprocs, 7)


def dies(world):
    if world.pid == 1:
        os.kill(os.getpid(), signal.SIGKILL)
    world.sync()


def _frames_of(error):
    import traceback
    return [frame.filename for frame in traceback.extract_tb(error.__traceback__)]


def _pybsp_lines(text):
    return [line for line in text.splitlines() if line.strip().startswith('File "')
            and ("/bsp/" in line or "/mpi_backend/" in line)]


@pytest.mark.parametrize("debug", ["", "1"])
def test_errors_raised_for_the_user_show_the_users_frames_unless_bsp_debug(monkeypatch, debug):
    """A RemoteError for a misused coarray, a TypeError for a bad call and
    (fork) a RankDiedError: bsp.run's caller sees its own line and one of
    bsp.run's, and the rank's traceback the program's frames; BSP_DEBUG=1
    shows pybsp's frames too."""
    require_nprocs(2)
    monkeypatch.setenv("BSP_DEBUG", debug)
    with pytest.raises(bsp.RemoteError) as remote:
        bsp.run(misuses_a_coarray, nprocs=2)
    with pytest.raises(TypeError, match="did you mean nprocs") as bad:
        bsp.run(misuses_a_coarray, nproc=2)
    raised = [remote.value, bad.value]
    if choose_backend(None) == "fork":      # there, a rank's death is seen by the launching process
        with pytest.raises(bsp.RankDiedError) as died:
            bsp.run(dies, nprocs=2)
        raised.append(died.value)
    for error in raised:
        ours = [name for name in _frames_of(error) if "/bsp/" in name]
        assert len(ours) == 1 if not debug else len(ours) > 2, (error, ours)
    remote_frames = _pybsp_lines(remote.value.remote_traceback)
    assert bool(remote_frames) is bool(debug), remote.value.remote_traceback
    assert "in misuses_a_coarray\n    xs.put(1.0, (world.pid + 1) % world.nprocs, 7)" in remote.value.remote_traceback
