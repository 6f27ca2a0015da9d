"""Records that are damaged, planted or cannot be written (issue 27, items
1, 4, 7 and 11): a damaged record is a RecordFormatError naming the part,
never a replay of other data; a record that another user owns or could
have written is refused before anything in it is read; describing a record
unpickles nothing; a rank that cannot write its part ends the run with an
error naming the reason (ENOSPC) and the path, on both backends, never a
hang."""

import os
import pickle
import random
import subprocess
import warnings

import pytest

import bsp
from bsp.recordings import record_file
from bsp.recordings.record_file import RecordFile, RecordFormatError
from bsp.recordings.replay import identical
from bsp.replay_cli import describe
from bsp.testing import require_nprocs
from fault_injection import FullDisk


def chatty(world, steps):
    """A few supersteps of messages and a collective, so that each rank's
    part holds several entries with blocks in them."""
    total = 0
    for step in range(steps):
        world.send([world.pid * 1000 + step] * 50, (world.pid + 1) % world.nprocs)
        world.sync()
        total += sum(sum(values) for _, values in world.messages())
    return world.allreduce(total)


@pytest.fixture
def recorded(tmp_path):
    require_nprocs(2)
    path = tmp_path / "run.bsprec"
    results = bsp.run(chatty, 3, nprocs=2, record=path)
    return path, results


def regions(path):
    """{rank: (start, end)} of each rank's part, and of its result."""
    with RecordFile(str(path)) as record:
        index = record._index
    owned = {}
    for pid, (start, length, _) in index["parts"].items():
        owned.setdefault(int(pid), []).append((start, start + length))
    for pid, (start, length, _) in index["results"].items():
        owned[int(pid)].append((start, start + length))
    return owned


def owner_of(offset, owned):
    """The rank whose part or result holds byte `offset`, or None for what
    every replay reads (header, call, index, footer)."""
    for pid, spans in owned.items():
        if any(start <= offset < end for start, end in spans):
            return pid
    return None


def test_every_damage_is_a_record_format_error_never_a_result(recorded, tmp_path):
    """30 seeded damages (a byte flipped anywhere, or the file cut short):
    the replays that read the damaged bytes raise RecordFormatError (naming
    the rank's part where the damage is in one), every other replay
    returns what the run returned."""
    path, results = recorded
    original = path.read_bytes()
    owned = regions(path)
    rng = random.Random(27)
    damaged = tmp_path / "damaged.bsprec"
    for trial in range(30):
        data = bytearray(original)
        if trial % 5 == 4:
            offset = rng.randrange(len(data))
            del data[offset:]
            owner = None
        else:
            offset = rng.randrange(len(data))
            data[offset] ^= rng.randrange(1, 256)
            owner = owner_of(offset, owned)
        damaged.write_bytes(bytes(data))
        for rank in range(2):
            try:
                replayed = bsp.replay(damaged, rank=rank)
            except RecordFormatError as error:
                if owner is not None:
                    assert f"rank {owner}'s" in str(error), (trial, offset, str(error))
                continue
            assert owner is not None and owner != rank, (trial, offset, "replayed a damaged part")
            assert identical(replayed, results[rank])


def test_a_damaged_part_is_found_before_the_program_runs(recorded, tmp_path):
    """Damage in the last entry of a part: the replay raises before the
    program has run a superstep (never a ReplayDivergence blamed on it)."""
    path, _ = recorded
    with RecordFile(str(path)) as record:
        start, length, _ = record._index["parts"]["1"]
    data = bytearray(path.read_bytes())
    data[start + length - 3] ^= 0xFF
    path.write_bytes(bytes(data))
    ran = []

    def program(world, steps):
        ran.append(world.pid)
        return chatty(world, steps)
    with pytest.raises(RecordFormatError, match=r"is damaged: rank 1's part, entry \d+, does not match its checksum"):
        bsp.replay(path, rank=1, program=program)
    assert ran == []
    assert bsp.replay(path, rank=0, program=program) is not None


PLANTED = "import os; open({marker!r}, 'w').close()"


class Planted:
    """A pickle that runs code when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return exec, (PLANTED.format(marker=str(self.marker)),)


def craft(path, marker, version=None):
    """A record whose call and results run code when unpickled."""
    from bsp.recordings.recording import make_manifest
    manifest = make_manifest(chatty, (1,), {}, 1, "fork", "the run finished")
    if version is not None:
        manifest["pybsp"] = version
    payload = pickle.dumps(Planted(marker))
    record_file.assemble(str(path), manifest, payload, {0: payload}, {0: str(path) + ".missing"})


def test_describing_a_record_unpickles_nothing(tmp_path):
    path, marker = tmp_path / "crafted.bsprec", tmp_path / "ran"
    craft(path, marker)
    with RecordFile(str(path)) as record:
        text = describe(record)
    assert "chatty on 1 ranks" in text and "rank 0: 0 exchanges" in text
    assert not marker.exists()


@pytest.mark.skipif(os.geteuid() != 0, reason="changing a file's owner needs root")
def test_a_record_another_user_owns_is_refused_before_it_is_read(tmp_path):
    path, marker = tmp_path / "crafted.bsprec", tmp_path / "ran"
    craft(path, marker)
    os.chown(path, 12345, -1)
    with pytest.raises(PermissionError, match=r"belongs to user 12345, not to this one .*replay only records you trust"):
        bsp.replay(path, rank=0)
    assert not marker.exists()


def test_a_record_others_could_write_is_refused(tmp_path):
    path, marker = tmp_path / "crafted.bsprec", tmp_path / "ran"
    craft(path, marker)
    os.chmod(path, 0o620)
    with pytest.raises(PermissionError, match=r"may be written by its group \(mode 0620\)"):
        RecordFile(str(path))
    os.chmod(path, 0o600)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)         # not sticky: anyone may replace what is in it
    os.rename(path, shared / "run.bsprec")
    with pytest.raises(PermissionError, match=r"the directory .*shared above .* may be written by other users "
                                              r"\(mode 0777, not sticky\)"):
        RecordFile(str(shared / "run.bsprec"))
    os.chmod(shared, 0o1777)        # sticky, and ours (as /tmp is root's): others cannot replace our files
    RecordFile(str(shared / "run.bsprec")).close()
    assert not marker.exists()


def test_another_pybsp_versions_record_gets_a_warning_naming_both(tmp_path):
    path = tmp_path / "old.bsprec"
    craft(path, tmp_path / "ran", version="0.0.1")
    with pytest.warns(UserWarning, match=rf"recorded by pybsp 0.0.1; this is pybsp {bsp.__version__}"):
        RecordFile(str(path)).close()
    craft(path, tmp_path / "ran")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RecordFile(str(path)).close()


# -- a rank that cannot write its part ----------------------------------------

def fills_the_disk(world, rank, superstep, steps=4):
    """Rank `rank`'s disk fills before the write of exchange `superstep`
    (`steps`: the program's return, the run's last exchange)."""
    for step in range(steps + 1):
        if world.pid == rank and step == superstep:
            world.engine.transport._writer._file = FullDisk()
        if step < steps:
            world.send(step, (world.pid + 1) % world.nprocs)
            world.sync()
    return world.pid


@pytest.mark.parametrize("nprocs, rank, superstep", [(2, 1, 0), (3, 0, 2), (3, 2, 1)])
def test_a_full_disk_while_recording_is_an_error_naming_enospc_and_the_path(tmp_path, nprocs, rank, superstep):
    require_nprocs(nprocs)
    path = tmp_path / "run.bsprec"
    with pytest.raises(bsp.RemoteError, match=rf"rank {rank} could not write its part of the record at "
                                              rf"{tmp_path}/\.run\.bsprec\.parts-\w+/rank-{rank}\.part: No space "
                                              rf"left on device \[ENOSPC\] \(the disk is full\)") as caught:
        bsp.run(fills_the_disk, rank, superstep, nprocs=nprocs, sync_timeout=60, record=path)
    assert caught.value.rank == rank
    assert os.listdir(tmp_path) == ["run.bsprec"]       # what could be recorded; the parts are gone


def test_a_full_disk_at_the_last_exchange_is_an_incomplete_record(tmp_path):
    """The write of the run's last exchange fails: the others have left, so
    the run ends as it would, and bsp.run raises that the record is
    incomplete, naming the rank."""
    require_nprocs(2)
    path = tmp_path / "run.bsprec"
    with pytest.raises(bsp.BSPError, match=rf"the record {path} is incomplete: the parts of ranks \[1\] stop early"):
        bsp.run(fills_the_disk, 1, 4, 4, nprocs=2, sync_timeout=60, record=path)


@pytest.fixture
def small_disk(tmp_path):
    """A 256 KiB filesystem (tmpfs: root may mount one), unmounted after."""
    mount = tmp_path / "small"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(mount)],
                          capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs here: {done.stderr.decode().strip()}")
    yield mount
    subprocess.run(["umount", str(mount)], check=True)


def big_messages(world):
    for _ in range(20):
        world.send(bytes(64 << 10), (world.pid + 1) % world.nprocs)
        world.sync()
    return world.pid


def test_a_really_full_disk_is_an_error_naming_enospc_and_the_path(small_disk):
    require_nprocs(2)
    with pytest.raises(bsp.BSPError, match=rf"could not write .*{small_disk}.*No space left on device \[ENOSPC\]"):
        bsp.run(big_messages, nprocs=2, sync_timeout=60, record=small_disk / "run.bsprec")
    assert not [name for name in os.listdir(small_disk) if name.startswith(".run.bsprec.parts-")]
