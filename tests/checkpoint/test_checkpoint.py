"""Checkpoint and restart: world.save / world.restore with bsp.run's
checkpoint directory.  A checkpoint written by some ranks is restored on
others with the same values; bad directories and damaged files are clear
errors that change nothing; the directory and its files are private."""

import hashlib
import random
import os
import stat
from pathlib import Path

import numpy as np
import pytest

import bsp
from bsp import CheckpointError, DistArray, RemoteError, SyncMismatchError
from bsp.machine import MachineParameters
from bsp.testing import require_nprocs, spmd
from script_loader import load_script

N = 23      # rows: not a multiple of any nprocs used here


def initial(rows):
    return np.stack([rows * 1.5, -rows * 0.25, rows ** 2 * 1.0], axis=1)


def program(world, step=None, distribution=None):
    """With a step: save a 2-D block DistArray, a 1-D cyclic one of ints,
    and values equal on every rank.  Without: what restore gives back."""
    if step is not None:
        plate = DistArray.from_function(world, (N, 3), initial)
        labels = DistArray.from_function(world, N, lambda rows: rows * 7, dtype=np.int64, distribution="cyclic")
        world.save(plate=plate, labels=labels, step=step, weights=np.linspace(0, 1, 5000), name="run")
        return world.pid
    state = world.restore(distribution=distribution)
    if state is None:
        return None
    return {key: value.gather() if isinstance(value, DistArray) else value for key, value in state.items()} | {
        "split": {key: (value.distribution, value.local.shape[0])
                  for key, value in state.items() if isinstance(value, DistArray)}}


def snapshot(directory):
    """Every file under `directory` and a digest of its bytes."""
    return {str(path.relative_to(directory)): hashlib.sha256(path.read_bytes()).hexdigest()
            for path in sorted(Path(directory).rglob("*")) if path.is_file()}


@pytest.fixture
def written(tmp_path):
    """A checkpoint directory holding a checkpoint written by 4 ranks."""
    require_nprocs(4)
    directory = tmp_path / "ck"
    assert bsp.run(program, 7, nprocs=4, checkpoint=directory) == [0, 1, 2, 3]
    return directory


@pytest.mark.parametrize("nprocs", [1, 2, 3, 4, 5, 6])
def test_restart_on_1_to_6_ranks_from_a_checkpoint_written_by_4(written, nprocs):
    require_nprocs(nprocs)
    results = bsp.run(program, nprocs=nprocs, checkpoint=written)
    first = results[0]
    assert np.array_equal(first["plate"], initial(np.arange(N)))
    assert np.array_equal(first["labels"], np.arange(N) * 7) and first["labels"].dtype == np.int64
    assert first["step"] == 7 and first["name"] == "run"
    assert np.array_equal(first["weights"], np.linspace(0, 1, 5000))
    assert first["split"]["plate"] == ("block", -(-N // nprocs))        # rank 0 holds the most rows
    assert first["split"]["labels"] == ("cyclic", len(range(0, N, nprocs)))
    assert all(result["step"] == 7 for result in results)


def test_restore_in_another_distribution(written):
    require_nprocs(3)
    results = bsp.run(program, None, {"plate": "cyclic"}, nprocs=3, checkpoint=written)
    assert results[1]["split"]["plate"] == ("cyclic", len(range(1, N, 3)))
    assert np.array_equal(results[0]["plate"], initial(np.arange(N)))


def test_a_fresh_start_is_none_and_creates_a_private_directory(tmp_path):
    directory = tmp_path / "new" / "ck"
    assert bsp.run(program, nprocs=2, checkpoint=directory) == [None, None]
    assert stat.S_IMODE(directory.stat().st_mode) == 0o700
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    assert bsp.run(program, nprocs=2, checkpoint=empty) == [None, None]
    assert stat.S_IMODE(empty.stat().st_mode) == 0o755        # not ours to change: only what pybsp made is 0700


def test_files_are_private_and_only_the_latest_checkpoint_is_kept(written):
    require_nprocs(4)
    bsp.run(program, 8, nprocs=4, checkpoint=written)
    entries = sorted(os.listdir(written))
    assert len(entries) == 2 and entries[0] == "LATEST" and entries[1].startswith("ck-")
    for path in Path(written).rglob("*"):
        assert stat.S_IMODE(path.stat().st_mode) == (0o700 if path.is_dir() else 0o600), path
    assert bsp.run(program, nprocs=2, checkpoint=written)[0]["step"] == 8


def per_rank(world, save):
    if save:
        world.save(mine=world.pid * 10, common=3)
        return None
    state = world.restore()
    return state["mine"], state["common"]


def test_values_that_differ_per_rank_come_back_on_the_same_nprocs_only(tmp_path):
    require_nprocs(3)
    bsp.run(per_rank, True, nprocs=3, checkpoint=tmp_path)
    assert bsp.run(per_rank, False, nprocs=3, checkpoint=tmp_path) == [(0, 3), (10, 3), (20, 3)]
    before = snapshot(tmp_path)
    with pytest.raises(RemoteError, match=r"saved by 3 ranks, and the values of 'mine' differed .* not 2"):
        bsp.run(per_rank, False, nprocs=2, checkpoint=tmp_path)
    assert snapshot(tmp_path) == before


def without_a_directory(world):
    state = world.restore()
    world.save(step=1)
    before = world.superstep
    world.save(step=2, plate=DistArray.zeros(world, 5))
    try:
        world.save(step=(x for x in []))
    except TypeError as error:
        message = str(error)
    return state, world.superstep - before, message


def test_without_a_directory_restore_is_none_and_save_a_superstep_that_writes_nothing():
    require_nprocs(2)
    state, supersteps, message = bsp.run(without_a_directory, nprocs=2)[0]
    assert state is None and supersteps == 1
    assert "the value of 'step' cannot be saved" in message and "generator" in message


def different_names(world):
    world.save(**({"a": 1} if world.pid == 0 else {"b": 1}))


def test_ranks_that_save_different_names_disagree(tmp_path):
    require_nprocs(2)
    with pytest.raises(SyncMismatchError, match=r"save at .*\(saving a\)"):
        bsp.run(different_names, nprocs=2, checkpoint=tmp_path)
    assert os.listdir(tmp_path) == [] or "LATEST" not in os.listdir(tmp_path)


@spmd(nprocs=[1, 2])
def test_a_distarray_of_python_objects_cannot_be_saved(world):
    objects = DistArray.zeros(world, 4, dtype=object)
    with pytest.raises(TypeError, match=r"DistArray 'objects' holds Python objects"):
        world.save(objects=objects)
    world.sync()


def other_program(world):
    return world.restore()


def test_another_programs_directory_is_refused_before_anything_runs(written):
    before = snapshot(written)
    with pytest.raises(CheckpointError, match=r"holds checkpoints of the program test_checkpoint.py:program, "
                                              r"not of test_checkpoint.py:other_program"):
        bsp.run(other_program, nprocs=2, checkpoint=written)
    assert snapshot(written) == before


def test_a_newer_format_is_refused(written):
    latest = written / "LATEST"
    latest.write_text(latest.read_text().replace('"format": 2', '"format": 3'))
    before = snapshot(written)
    with pytest.raises(CheckpointError, match=r"format 3, written by a newer pybsp; this one reads format 2"):
        bsp.run(program, nprocs=2, checkpoint=written)
    assert snapshot(written) == before


def damage(directory, pattern, how):
    [path] = Path(directory).glob(pattern)
    data = bytearray(path.read_bytes())
    if how == "truncate":
        data = data[:-9]
    else:
        data[-5] ^= 0x40
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("pattern, how, message", [
    ("ck-*/r1.a0.npy", "truncate", r"r1.a0.npy is \d+ bytes long, not \d+: truncated or damaged"),
    ("ck-*/r2.a1.npy", "flip", r"r2.a1.npy is damaged: the checksum of rows \d+..\d+ does not match"),
    ("ck-*/r0.values", "flip", r"r0.values is truncated or damaged"),
    ("ck-*/r0.values", "truncate", r"r0.values is truncated or damaged"),
    ("ck-*/manifest.json", "flip", r"manifest.json is damaged: its SHA-256 is not the one LATEST recorded"),
])
def test_a_damaged_checkpoint_is_an_error_on_every_rank_and_changes_nothing(written, pattern, how, message):
    require_nprocs(4)
    damage(written, pattern, how)
    before = snapshot(written)
    with pytest.raises(RemoteError, match=message) as caught:
        bsp.run(program, nprocs=4, checkpoint=written)
    assert "CheckpointError" in caught.value.remote_traceback
    assert sorted(caught.value.failures) == [0, 1, 2, 3]
    assert snapshot(written) == before


def test_symbolic_links_are_not_followed(tmp_path, written):
    link = tmp_path / "link"
    link.symlink_to(written)
    with pytest.raises(CheckpointError, match="is a symbolic link: pybsp follows none"):
        bsp.run(program, nprocs=2, checkpoint=link)
    target = tmp_path / "elsewhere"
    target.write_text("keep")
    latest = written / "LATEST"
    latest.unlink()
    latest.symlink_to(target)
    with pytest.raises(CheckpointError, match="cannot read 'LATEST'"):
        bsp.run(program, nprocs=2, checkpoint=written)
    assert target.read_text() == "keep"


def test_a_directory_with_other_files_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(CheckpointError, match=r"holds files that pybsp did not write \(notes.txt\)"):
        bsp.run(program, 1, nprocs=1, checkpoint=tmp_path)
    assert os.listdir(tmp_path) == ["notes.txt"]


def test_a_save_shows_in_the_profile_with_its_bytes_written(tmp_path):
    require_nprocs(2)
    profiles = []
    bsp.run(program, 1, nprocs=2, checkpoint=tmp_path, profile=profiles.append)
    [profile] = profiles
    [step] = [s for s in range(profile.supersteps) if profile.label(s).startswith("save at")]
    assert "(saving labels, name, plate, step, weights)" in profile.label(step)
    for pid, rows in enumerate([12, 11]):       # of the plate (block) and the labels (cyclic)
        data = rows * 3 * 8 + rows * 8 + 5000 * 8
        assert data < profile.bytes_written[pid, step] < data + 1000     # and the values' pickles
    assert profile.bytes_written[:, [s for s in range(profile.supersteps) if s != step]].sum() == 0
    machine = MachineParameters(r=1e9, g=1e-9, l=1e-5, nprocs=2, backend="fork")
    assert "checkpoints: 1 supersteps wrote" in profile.report(machine)


def twice(world, restore_only=False):
    if restore_only:
        return world.restore()["step"]
    world.save(step=1, plate=DistArray.from_function(world, (N, 3), initial))
    world.sync()        # rank 0 has committed the first save before it comes here
    world.save(step=2, plate=DistArray.from_function(world, (N, 3), initial))
    return 2


def killing(original, pid, superstep, when=lambda *args: True, before=False):
    """`original`, but rank `pid` dies by SIGKILL when it calls it (after
    the call, or before it with `before`) from `superstep` on, when `when`
    says so."""
    from bsp.launch.rank_runner import current_engine

    def dies(args):
        engine = current_engine()
        return engine is not None and engine.pid == pid and engine.superstep >= superstep and when(*args)

    def call(*args, **kwargs):
        if before and dies(args):
            os.kill(os.getpid(), 9)
        result = original(*args, **kwargs)
        if not before and dies(args):
            os.kill(os.getpid(), 9)
        return result
    return call


@pytest.mark.mpi_skip
@pytest.mark.parametrize("where, pid, restored", [
    ("rank 2 has written its part", 2, 1),
    ("rank 0 has written the manifest, not LATEST", 0, 1),
    ("rank 0 has written its new LATEST, not renamed it into place", 0, 1),
    ("rank 0 has replaced LATEST", 0, 2),
])
def test_a_rank_killed_during_save_leaves_a_complete_checkpoint(tmp_path, monkeypatch, where, pid, restored):
    from bsp.checkpoint import files, save
    # The second save writes in superstep 2 and commits in superstep 3.
    if where.startswith("rank 2"):
        monkeypatch.setattr(files, "write_values", killing(files.write_values, pid, 2))
    elif "not LATEST" in where:
        monkeypatch.setattr(files, "write_atomically", killing(
            files.write_atomically, pid, 3, lambda fd, name, data: name != "LATEST"))
    elif "not renamed" in where:
        monkeypatch.setattr(os, "rename", killing(
            os.rename, pid, 3, lambda source, target: source.startswith(".LATEST."), before=True))
    else:
        monkeypatch.setattr(save, "_prune", killing(save._prune, pid, 3))
    with pytest.raises(bsp.RankDiedError, match=f"rank {pid} died: killed by signal 9"):
        bsp.run(twice, nprocs=3, checkpoint=tmp_path)
    monkeypatch.undo()
    left_writing = [name for name in os.listdir(tmp_path) if name.startswith(".LATEST.")]
    assert len(left_writing) == ("not renamed" in where)      # the next run takes it for pybsp's, and removes it
    assert bsp.run(twice, True, nprocs=2, checkpoint=tmp_path) == [restored, restored]
    assert bsp.run(twice, nprocs=2, checkpoint=tmp_path) == [2, 2]
    assert len(os.listdir(tmp_path)) == 2       # LATEST and the last checkpoint: the rest was removed


@pytest.mark.mpi_skip
def test_runs_killed_at_random_resume_to_the_uninterrupted_answer(tmp_path):
    """A few trials of scripts/checkpoint_kills (which runs 50 and more)."""
    kills = load_script("checkpoint_kills")
    args = ["60", "80", "4"]
    expected, _ = kills.uninterrupted(tmp_path / "reference", False, args)
    rng = random.Random(18)
    for number in range(2):
        result = kills.trial(number, rng, tmp_path, expected, False, args)
        assert result["same"], result


def nested(world, directory):
    if world.pid == 0:
        with pytest.raises(CheckpointError, match="is in use by another run"):
            from bsp.checkpoint.save import checkpointing
            with checkpointing(nested, directory):
                pass
    return world.pid


@pytest.mark.mpi_skip
def test_a_directory_is_held_by_one_run_at_a_time(tmp_path):
    assert bsp.run(nested, str(tmp_path), nprocs=2, checkpoint=tmp_path) == [0, 1]


def grid_program(world, save, distribution=None, grid=None):
    """A 2-D array over a processor grid (block rows, block-cyclic columns:
    column indices that are no range, kept in a file) and a 3-D one with an
    axis not split."""
    def matrix(i, j):
        return i * 1000.0 + j

    def cube(i, j, k):
        return (i * 100 + j * 10 + k).astype(np.int32)

    if save:
        a = DistArray.from_function(world, (13, 11), matrix, distribution=("block", ("block-cyclic", 2)))
        c = DistArray.from_function(world, (5, 4, 3), cube, dtype=np.int32, distribution=("cyclic", None, "block"))
        world.save(a=a, c=c)
        return a.grid, c.grid
    state = world.restore(distribution=distribution, grid=grid)
    a, c = state["a"], state["c"]
    i, j = np.ix_(a.index(0), a.index(1))
    assert np.array_equal(a.local, matrix(i, j)), (world.pid, a.local)
    assert np.array_equal(c.local, cube(*np.ix_(c.index(0), c.index(1), c.index(2))))
    return a.distribution, a.grid, c.distribution, c.grid, a.gather(), c.gather()


def test_distarrays_over_a_grid_come_back_on_any_nprocs_in_any_distribution(tmp_path):
    if not hasattr(DistArray, "index"):
        pytest.skip("needs the n-dimensional DistArray (issue 12), not on this branch yet")
    require_nprocs(4)
    assert bsp.run(grid_program, True, nprocs=4, checkpoint=tmp_path)[0] == ((2, 2), (2, 1, 2))
    for nprocs in (1, 3, 4, 6):
        require_nprocs(nprocs)
        distribution, grid, _, c_grid, a, c = bsp.run(grid_program, False, nprocs=nprocs, checkpoint=tmp_path)[0]
        assert distribution == ("block", ("block-cyclic", 2))
        assert np.prod(grid) == nprocs and (nprocs != 4 or grid == (2, 2))     # the saved grid on 4 ranks
        assert np.array_equal(a, np.add.outer(np.arange(13) * 1000.0, np.arange(11)))
        assert c.dtype == np.int32 and c[4, 3, 2] == 432
    other = {"a": (("block-cyclic", 3), "cyclic")}
    distribution, grid, _, _, a, _ = bsp.run(grid_program, False, other, {"a": (1, 3)}, nprocs=3,
                                             checkpoint=tmp_path)[0]
    assert distribution == (("block-cyclic", 3), "cyclic") and grid == (1, 3)
    assert np.array_equal(a, np.add.outer(np.arange(13) * 1000.0, np.arange(11)))
