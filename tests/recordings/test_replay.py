"""Recording a run (bsp.run(..., record=)) and replaying one rank alone
(bsp.recordings.replay): the replay returns what the rank returned, raises what it
raised, and raises ReplayDivergence where the program does otherwise than
recorded.  The runs use the backend of the leg (fork, or MPI under mpiexec);
the replays run in the test process, where no MPI is needed."""

import operator
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bsp
from bsp.recordings.record_file import RecordFile, RecordFormatError
from bsp.recordings.replay import identical
from bsp.testing import require_nprocs

HERE = os.path.basename(__file__)


same = identical


def everything(world, n):
    """Every kind of arrival: messages, queues, puts and gets of vars and
    coarrays, every collective, a group's, dill-only objects."""
    right, left = (world.pid + 1) % world.nprocs, (world.pid - 1) % world.nprocs
    var = world.var(world.pid * n)
    array = world.coarray(6, np.float64)
    queue = world.queue()
    world.send({"from": world.pid, "shared": [world.pid] * 2}, right)
    queue.send(np.arange(2000) * world.pid, left)
    var.put(world.pid + 100, right)
    array.put(np.full(3, world.pid + 0.5), right, slice(0, 3))
    future = array.get(left, slice(0, 6))
    world.sync()
    messages, queued = world.messages(), [(s, a.sum()) for s, a in queue]
    factor = 3
    scaled = world.broadcast((lambda x: x * factor) if world.pid == 0 else None)
    return (messages, queued, var.value, array.local.copy(), future.value, scaled(world.pid),
            world.reduce(world.pid, root=world.nprocs - 1), world.allreduce(n, op=operator.mul),
            world.gather(str(world.pid)), world.allgather(np.ones(3) * world.pid),
            world.scatter([i * i for i in range(world.nprocs)] if world.pid == 0 else None),
            world.alltoall([(world.pid, j) for j in range(world.nprocs)]), world.scan(world.pid + 1),
            world.split(world.pid % 2).allgather(world.pid), world.superstep)


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_replay_returns_what_every_rank_returned(tmp_path, nprocs):
    require_nprocs(nprocs)
    path = tmp_path / "run.bsprec"
    results = bsp.run(everything, 7, nprocs=nprocs, record=path)
    for rank in range(nprocs):
        assert same(bsp.replay(path, rank=rank), results[rank])
    with RecordFile(str(path)) as record:
        assert record.manifest["nprocs"] == nprocs and record.ranks() == list(range(nprocs))
        assert same(record.result(nprocs - 1), results[-1])
    assert os.listdir(tmp_path) == ["run.bsprec"]       # the ranks' parts are gone


def fails_on_rank_one(world):
    world.sync()
    if world.pid == 1:
        raise KeyError("the rank's own error")
    world.sync()
    return world.pid


def test_the_failing_rank_raises_its_error_and_the_others_the_remote_error(tmp_path):
    require_nprocs(3)
    path = tmp_path / "run.bsprec"
    with pytest.raises(bsp.RemoteError):
        bsp.run(fails_on_rank_one, nprocs=3, record=path)
    with pytest.raises(KeyError, match="the rank's own error"):
        bsp.replay(path, rank=1)
    for rank in (0, 2):
        with pytest.raises(bsp.RemoteError, match="rank 1 raised KeyError") as error:
            bsp.replay(path, rank=rank)
        assert error.value.rank == 1
    with RecordFile(str(path)) as record:
        assert record.manifest["ending"].startswith("RemoteError: rank 1 raised KeyError")
        with pytest.raises(LookupError):
            record.result(1)


def skips_a_sync(world):
    if world.pid != 0:
        world.sync()
    return world.allreduce(1)


def test_a_mismatch_replays_as_a_mismatch(tmp_path):
    require_nprocs(2)
    path = tmp_path / "run.bsprec"
    with pytest.raises(bsp.SyncMismatchError):
        bsp.run(skips_a_sync, nprocs=2, record=path)
    for rank in range(2):
        with pytest.raises(bsp.SyncMismatchError, match="ranks disagree at the end of superstep 0"):
            bsp.replay(path, rank=rank)


def ring(world, value):
    world.send(value, (world.pid + 1) % world.nprocs)
    world.sync()
    return world.allreduce(sum(v for _, v in world.messages()))


@pytest.fixture
def ring_record(tmp_path):
    require_nprocs(2)
    path = tmp_path / "ring.bsprec"
    assert bsp.run(ring, 5, nprocs=2, record=path) == [10, 10]
    return path


def test_a_program_that_sends_other_bytes_diverges(ring_record):
    with pytest.raises(bsp.ReplayDivergence, match="superstep 0") as error:
        bsp.replay(ring_record, rank=1, args=(6,))      # same size, other value
    assert error.value.rank == 1 and error.value.superstep == 0
    assert f"{HERE}:" in error.value.site and "in ring" in error.value.site
    assert "other bytes" in str(error.value)
    # Only the number and sizes are compared then; the arrivals are the recorded ones.
    assert bsp.replay(ring_record, rank=1, args=(6,), check_bytes=False) == 10


def sends_elsewhere(world, value):
    world.send(value, world.pid)
    world.sync()
    return world.allreduce(value)


def test_a_program_that_sends_to_another_rank_diverges(ring_record):
    with pytest.raises(bsp.ReplayDivergence, match="it sent 1 message.* to rank 0 .* the recorded run sent "
                                                   "1 message.* to rank 1"):
        bsp.replay(ring_record, rank=0, program=sends_elsewhere)


def calls_a_collective(world, value):
    world.send(value, (world.pid + 1) % world.nprocs)
    return world.allreduce(value)


def test_a_program_that_syncs_otherwise_diverges(ring_record):
    with pytest.raises(bsp.ReplayDivergence, match="it called allreduce; the recorded run called sync") as error:
        bsp.replay(ring_record, rank=0, program=calls_a_collective)
    assert "in calls_a_collective" in error.value.site


def creates_a_var(world, value):
    world.var(0)
    return ring(world, value)


def test_a_program_that_creates_other_objects_diverges(ring_record):
    with pytest.raises(bsp.ReplayDivergence, match=r"it had created 1 data objects \(var\); "
                                                   "the recorded run had created 0"):
        bsp.replay(ring_record, rank=1, program=creates_a_var)


def returns_early(world, value):
    return value


def syncs_more(world, value):
    result = ring(world, value)
    world.sync()
    return result


def test_a_program_that_ends_early_or_late_diverges(ring_record):
    with pytest.raises(bsp.ReplayDivergence, match="it returned from the program; the recorded run called sync"):
        bsp.replay(ring_record, rank=0, program=returns_early)
    with pytest.raises(bsp.ReplayDivergence, match="superstep 2.*it called sync; the recorded run returned from the program"):
        bsp.replay(ring_record, rank=0, program=syncs_more)


def test_an_edited_program_that_does_the_same_replays(ring_record):
    def edited(world, value):
        result = ring(world, value)
        return ("edited", result)
    assert bsp.replay(ring_record, rank=1, program=edited) == ("edited", 10)


def test_bad_replays_say_what_is_wrong(ring_record, tmp_path):
    with pytest.raises(ValueError, match=r"rank=2, but the run recorded in .* had ranks 0..1"):
        bsp.replay(ring_record, rank=2)
    with pytest.raises(TypeError, match="rank must be an int"):
        bsp.replay(ring_record, rank="0")
    other = tmp_path / "other"
    other.write_bytes(b"not a record at all")
    with pytest.raises(RecordFormatError, match="is not a pybsp record"):
        bsp.replay(other, rank=0)
    cut = tmp_path / "cut.bsprec"
    cut.write_bytes(ring_record.read_bytes()[:-10])
    with pytest.raises(RecordFormatError, match="cut short"):
        bsp.replay(cut, rank=0)
    newer = tmp_path / "newer.bsprec"
    data = bytearray(ring_record.read_bytes())
    data[8] = 99
    newer.write_bytes(bytes(data))
    with pytest.raises(RecordFormatError, match="format version 99; this pybsp reads version 3"):
        bsp.replay(newer, rank=0)


def test_bad_record_paths_are_refused_before_the_run(tmp_path):
    with pytest.raises(ValueError, match="does not exist"):
        bsp.run(ring, 1, nprocs=1, record=tmp_path / "missing" / "run.bsprec")
    with pytest.raises(ValueError, match="is a directory"):
        bsp.run(ring, 1, nprocs=1, record=tmp_path)
    with pytest.raises(TypeError, match="record must be the path of a file"):
        bsp.run(ring, 1, nprocs=1, record=3)


def test_the_record_replaces_a_symlink_rather_than_write_through_it(tmp_path):
    target = tmp_path / "target"
    target.write_text("keep me")
    link = tmp_path / "run.bsprec"
    link.symlink_to(target)
    bsp.run(ring, 1, nprocs=1, record=link)
    assert target.read_text() == "keep me"
    assert not link.is_symlink()
    assert oct(link.stat().st_mode & 0o777) == "0o600"
    assert bsp.replay(link, rank=0) == 1


def breaks(world):
    breakpoint()
    return world.allreduce(world.pid)


def test_breakpoints_are_skipped_by_the_ranks_of_a_recorded_run(tmp_path, monkeypatch):
    require_nprocs(2)
    path = tmp_path / "run.bsprec"
    assert bsp.run(breaks, nprocs=2, record=path) == [1, 1]
    stops = []
    monkeypatch.setattr("sys.breakpointhook", lambda *a, **k: stops.append("stopped"))
    assert bsp.replay(path, rank=1) == 1
    assert stops == ["stopped"]


@pytest.mark.mpi_skip
def test_bsp_record_names_the_second_run_of_a_process_apart(tmp_path, monkeypatch):
    monkeypatch.setenv("BSP_RECORD", str(tmp_path / "run.bsprec"))
    monkeypatch.setattr("bsp.recordings.recording._runs_recorded_here", 0)
    bsp.run(ring, 1, nprocs=2)
    bsp.run(ring, 2, nprocs=2)
    assert sorted(os.listdir(tmp_path)) == ["run.2.bsprec", "run.bsprec"]
    assert bsp.replay(tmp_path / "run.2.bsprec", rank=0) == 4


def dies(world):
    world.sync()
    if world.pid == 1:
        os._exit(3)
    world.sync()


@pytest.mark.mpi_skip
def test_a_run_whose_rank_died_is_recorded_up_to_the_death(tmp_path):
    path = tmp_path / "run.bsprec"
    with pytest.raises(bsp.RankDiedError):
        bsp.run(dies, nprocs=2, record=path)
    # (superstep 0 too: rank 0 may be stopped before its first exchange returned)
    with pytest.raises(bsp.ReplayDivergence, match="superstep [01].*recorded nothing more of this rank "
                                                   r"\(the recording stopped: RankDiedError: rank 1 died"):
        bsp.replay(path, rank=0)        # (a replay of rank 1 would end this process as the rank ended)
    assert os.listdir(tmp_path) == ["run.bsprec"]


# -- the examples, recorded with `bsp run --record`, replayed rank by rank ------

ROOT = Path(__file__).resolve().parents[2]
# bspbench sends the times it measured: no two runs send the same bytes.
EXAMPLES = sorted(path.name for path in (ROOT / "examples").glob("*.py") if path.name != "bspbench.py")
SMALL = {"inner_product.py": ["1000"], "stencil.py": ["12", "5"], "stencil_checkpoint.py": ["12", "5", "2"], "sample_sort.py": ["3000"],
         "sieve.py": ["2000"], "lu.py": ["12"], "lu2d.py": ["12"], "fft.py": ["6"], "spmv.py": ["300", "4"],
         "pagerank.py": ["300", "4"], "components.py": ["300"], "power_couples.py": ["300", "6"],
         "debug_me.py": ["--fixed"], "kmeans.py": ["300", "3"]}
# Examples whose results end with a time measured in the run, which no replay can repeat.
TIMED = {"sample_sort.py", "pagerank.py"}


def bsp_command(*arguments, **subprocess_options):
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    return subprocess.run([str(Path(sys.executable).parent / "bsp"), *map(str, arguments)], capture_output=True,
                          text=True, env=env, cwd=ROOT, timeout=300, **subprocess_options)


@pytest.mark.mpi_skip
@pytest.mark.parametrize("example", EXAMPLES)
def test_every_rank_of_every_example_replays_to_its_result(example, tmp_path):
    path = tmp_path / "run.bsprec"
    done = bsp_command("run", "-n", 3, "--record", path, ROOT / "examples" / example, *SMALL.get(example, []))
    assert done.returncode == 0, done.stderr
    with RecordFile(str(path)) as record:
        assert record.manifest["nprocs"] == 3 and record.manifest["hash_seed"]
        for rank in range(3):
            replayed, recorded = bsp.replay(path, rank=rank), record.result(rank)
            if example in TIMED:
                replayed, recorded = replayed[:-1], recorded[:-1]
            assert identical(replayed, recorded), (example, rank)


@pytest.mark.mpi_skip
def test_a_record_made_under_mpiexec_replays_in_a_plain_process(tmp_path):
    if not (Path(sys.executable).parent / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python: scripts/setup test mpich installs one")
    path = tmp_path / "run.bsprec"
    done = bsp_command("run", "--mpi", "-n", 2, "--record", path, ROOT / "examples" / "stencil.py", 10, 4)
    assert done.returncode == 0, done.stderr
    with RecordFile(str(path)) as record:
        assert record.manifest["backend"] == "mpi"
        for rank in range(2):
            assert identical(bsp.replay(path, rank=rank), record.result(rank))


SCRIPT = '''
import bsp

def program(world, words):
    world.send(set(words) | {str(world.pid)}, (world.pid + 1) % world.nprocs)
    world.sync()
    return sorted(world.messages()[0][1])

if __name__ == "__main__":
    print(bsp.run(program, ["a", "b", "c", "d", "e"]))
'''


@pytest.mark.mpi_skip
def test_bsp_replay_describes_a_record_and_replays_a_rank_of_it(tmp_path):
    script, path = tmp_path / "script.py", tmp_path / "run.bsprec"
    script.write_text(SCRIPT)
    done = bsp_command("run", "-n", 2, "--record", path, script)
    assert done.returncode == 0, done.stderr
    described = bsp_command("replay", path)
    assert described.stdout.splitlines()[0].endswith("__main__.program on 2 ranks (fork backend, host "
                                                      f"{os.uname().nodename}, Python {sys.version.split()[0]})")
    assert described.stdout.splitlines()[1:] == ["  the run finished", "  rank 0: 2 exchanges, complete",
                                                 "  rank 1: 2 exchanges, complete"]
    # A set of strings sent: its bytes depend on the hash seed, which the record holds and the replay uses.
    replayed = bsp_command("replay", path, "--rank", 1)
    assert replayed.stdout == "rank 1 returned ['0', 'a', 'b', 'c', 'd', 'e'] (the same as in the run)\n"
    missing = bsp_command("replay", tmp_path / "missing.bsprec", "--rank", 0)
    assert missing.returncode == 2 and "No such file or directory" in missing.stderr


@pytest.mark.mpi_skip
def test_a_breakpoint_in_the_program_stops_bsp_replay_at_the_terminal(tmp_path):
    script, path = tmp_path / "script.py", tmp_path / "run.bsprec"
    script.write_text(SCRIPT.replace("    world.sync()\n", "    breakpoint()\n    world.sync()\n"))
    done = bsp_command("run", "-n", 2, "--record", path, script)     # the ranks skip it
    assert done.returncode == 0, done.stderr
    replayed = bsp_command("replay", path, "--rank", 1, input="p world.pid, world.superstep\ncontinue\n")
    assert "-> world.sync()\n(Pdb) (1, 0)\n(Pdb) rank 1 returned ['0', 'a'" in replayed.stdout


STUCK = '''
import sys, threading
import bsp

def stuck(world):
    world.sync()
    if world.pid == 1:
        threading.Event().wait()
    world.sync()

if __name__ == "__main__":
    bsp.run(stuck, sync_timeout=1, record=sys.argv[1])
'''


@pytest.mark.mpi_skip
def test_a_sync_timeout_under_mpiexec_is_recorded_and_replays_as_one(tmp_path):
    mpiexec = Path(sys.executable).parent / "mpiexec"
    if not mpiexec.exists():
        pytest.skip("no mpiexec beside this Python: scripts/setup test mpich installs one")
    script, path = tmp_path / "stuck.py", tmp_path / "run.bsprec"
    script.write_text(STUCK)
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    done = subprocess.run([str(mpiexec), "-n", "2", sys.executable, str(script), str(path)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert done.returncode != 0 and "SyncTimeoutError" in done.stderr
    with pytest.raises(bsp.SyncTimeoutError, match=r"ranks \[1\] did not reach the sync of superstep 1"):
        bsp.replay(path, rank=0)
    with RecordFile(str(path)) as record:
        assert record.manifest["ending"].startswith("SyncTimeoutError: ranks [1] did not reach")


@pytest.mark.mpi_skip
def test_a_rank_that_cannot_write_its_part_fails_the_run_saying_so(tmp_path, monkeypatch):
    def refuse(path):
        raise FileNotFoundError(2, "No such file or directory", path)
    monkeypatch.setattr("bsp.recordings.recording.PartWriter", refuse)     # the forked ranks inherit it
    with pytest.raises(bsp.RemoteError, match=r"rank 0 cannot write its part of the record at .*rank-0.part: "
                                              r".*No such file or directory.*every node shares"):
        bsp.run(ring, 1, nprocs=2, record=tmp_path / "run.bsprec")
    assert os.listdir(tmp_path) == ["run.bsprec"]


UNGUARDED = '''
import os, sys
import bsp

def helper():
    return 10

def program(world, folder):
    open(os.path.join(folder, f"ran-{world.pid}"), "w").close()
    world.sync()
    return 1 // (world.pid - 1) + helper()

results = bsp.run(program, sys.argv[1], nprocs=2)
print(results[0])
'''


@pytest.mark.mpi_skip
def test_replay_from_file_reads_an_unguarded_script_without_running_it(tmp_path):
    """A script without a __main__ guard: --from-file reads its definitions
    with bsp.run turned off (skipping the statements that call it or use
    its results), and replays."""
    script, path = tmp_path / "unguarded.py", tmp_path / "run.bsprec"
    script.write_text(UNGUARDED)
    done = bsp_command("run", "--record", path, script, tmp_path)
    assert done.returncode != 0 and "RemoteError: rank 1 raised ZeroDivisionError" in done.stderr
    for ran in tmp_path.glob("ran-*"):
        ran.unlink()
    failed = bsp_command("replay", path, "--rank", 1, "--from-file")
    assert [ran.name for ran in tmp_path.glob("ran-*")] == ["ran-1"]       # the replay alone: no run
    assert failed.returncode == 1 and "bsp replay: rank 1's program raised:" in failed.stderr
    assert "ZeroDivisionError: integer division or modulo by zero" in failed.stderr
    assert "RemoteError" not in failed.stderr.split("(the recorded run ended")[0]
