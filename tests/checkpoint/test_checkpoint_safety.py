"""Checkpoints that are not ours, not this program's, or cannot be written
(issue 27, items 2, 3, 12 and 13): a directory or file that another user
owns or could write is refused before anything in it is read, and never
chmod'ed; plain values and arrays come back without pickle; a program is
known by its code and its file, and `resume="force"` resumes one changed on
purpose; a directory that cannot be written is a CheckpointError naming it;
a new distribution chooses its own grid."""

import ctypes
import json
import os
import pickle
import shutil
import subprocess
import sys
import textwrap
import warnings
from pathlib import Path

import numpy as np
import pytest

import bsp
from bsp import CheckpointError, DistArray, RemoteError
from bsp.testing import require_nprocs

root_only = pytest.mark.skipif(os.geteuid() != 0, reason="giving a file to another user needs root")
OTHER_USER = 12345


def saves(world, restore_only=False):
    if restore_only:
        state = world.restore()
        return None if state is None else sorted(state)
    world.save(step=3, weights=np.arange(4.0))
    return world.pid


@pytest.fixture
def written(tmp_path):
    require_nprocs(2)
    directory = tmp_path / "ck"
    bsp.run(saves, nprocs=2, checkpoint=directory)
    return directory


def checkpoint_file(directory, name):
    [path] = Path(directory).glob(f"ck-*/{name}")
    return path


# -- other users' files -----------------------------------------------------------

@root_only
def test_a_directory_another_user_owns_is_refused_and_left_as_it_is(written):
    os.chown(written, OTHER_USER, -1)
    with pytest.raises(CheckpointError, match=rf"{written} belongs to user {OTHER_USER}, not to this one .*"
                                              r"a checkpoint is trusted code"):
        bsp.run(saves, True, nprocs=2, checkpoint=written)
    assert written.stat().st_uid == OTHER_USER and written.stat().st_mode & 0o777 == 0o700


class Planted:
    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').close()",)


@root_only
def test_files_planted_by_another_user_in_a_shared_directory_never_run(written, tmp_path):
    """A sticky 1777 directory of another user, holding a checkpoint whose
    values would run code: refused, and not chmod'ed."""
    shared, marker = tmp_path / "shared", tmp_path / "ran"
    shutil.copytree(written, shared)
    values = checkpoint_file(shared, "r0.values")
    values.write_bytes(pickle.dumps(Planted(marker)))
    for path in [shared, *shared.rglob("*")]:
        os.chown(path, OTHER_USER, -1)
    os.chmod(shared, 0o1777)
    with pytest.raises(CheckpointError, match=f"belongs to user {OTHER_USER}"):
        bsp.run(saves, True, nprocs=2, checkpoint=shared)
    assert shared.stat().st_mode & 0o7777 == 0o1777
    assert not marker.exists()


@root_only
def test_a_file_another_user_owns_in_our_directory_is_refused_on_every_rank(written):
    os.chown(checkpoint_file(written, "r1.values"), OTHER_USER, -1)
    with pytest.raises(RemoteError, match=rf"r1.values belongs to user {OTHER_USER}, not to this one"):
        bsp.run(saves, True, nprocs=2, checkpoint=written)


@pytest.mark.parametrize("what, mode, message", [
    ("directory", 0o770, r"may be written by its group \(mode 0770\)"),
    ("directory", 0o1777, r"may be written by its group and other users \(mode 1777\)"),
    ("LATEST", 0o622, r"ck/LATEST may be written by its group and other users \(mode 0622\)"),
    ("r0.values", 0o620, r"r0.values may be written by its group \(mode 0620\)"),
])
def test_what_others_could_write_is_refused(written, what, mode, message):
    path = written if what == "directory" else written / what if what == "LATEST" else \
        checkpoint_file(written, what)
    os.chmod(path, mode)
    with pytest.raises((CheckpointError, RemoteError), match=message):
        bsp.run(saves, True, nprocs=2, checkpoint=written)
    assert path.stat().st_mode & 0o7777 == mode       # refused, not changed


def test_a_directory_above_that_others_could_write_is_refused_unless_sticky(tmp_path):
    require_nprocs(2)
    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    with pytest.raises(CheckpointError, match=r"the directory .*shared above .* may be written by other users "
                                              r"\(mode 0777, not sticky\)"):
        bsp.run(saves, nprocs=2, checkpoint=shared / "ck")
    os.chmod(shared, 0o1777)        # as /tmp: others may add files there, not replace ours
    assert bsp.run(saves, nprocs=2, checkpoint=shared / "ck") == [0, 1]


# -- values without pickle -----------------------------------------------------------

PLAIN = {"count": 2 ** 70, "ratio": -0.0, "nan": float("nan"), "flag": True, "name": "é", "none": None,
         "nested": {"a": [1, 2.5, ["x", None]], "b": {}}}


def saves_values(world, restore_only=False):
    if restore_only:
        return world.restore()
    world.save(**PLAIN, array=np.arange(6, dtype=np.int16).reshape(2, 3), fortran=np.asfortranarray(np.eye(3)),
               pair=(1, 2), scalar=np.float32(1.5))


def test_plain_values_and_arrays_are_kept_without_pickle_and_come_back_as_they_were(tmp_path):
    require_nprocs(2)
    bsp.run(saves_values, nprocs=2, checkpoint=tmp_path)
    manifest = json.loads(checkpoint_file(tmp_path, "manifest.json").read_text())
    encodings = {key: place["encoding"] for key, place in manifest["ranks"][0]["values"].items()}
    assert encodings == {**{key: "json" for key in PLAIN}, "array": "npy", "fortran": "npy",
                         "pair": "pickle", "scalar": "pickle"}
    state = bsp.run(saves_values, True, nprocs=2, checkpoint=tmp_path)[1]
    for key, value in PLAIN.items():
        assert type(state[key]) is type(value) and (state[key] == value or key == "nan"), key
    assert str(state["ratio"]) == "-0.0" and state["nan"] != state["nan"]
    assert state["array"].dtype == np.int16 and state["array"].tolist() == [[0, 1, 2], [3, 4, 5]]
    assert np.array_equal(state["fortran"], np.eye(3))
    assert state["pair"] == (1, 2) and type(state["scalar"]) is np.float32


def saves_objects(world, restore_only=False):
    if restore_only:
        return world.restore()
    world.save(a=DistArray.zeros(world, 4, dtype=np.int64))


def test_a_manifest_that_makes_an_array_of_objects_is_refused(tmp_path):
    """Raw bytes read as object pointers would crash or run anything: only
    a crafted manifest asks for it, and the manifest is checked by LATEST,
    so the crafted one comes with its LATEST."""
    require_nprocs(2)
    bsp.run(saves_objects, nprocs=2, checkpoint=tmp_path)
    manifest_path = checkpoint_file(tmp_path, "manifest.json")
    manifest = json.loads(manifest_path.read_text())
    manifest["arrays"]["a"]["dtype"] = "|O"
    data = json.dumps(manifest).encode()
    manifest_path.write_bytes(data)
    latest = json.loads((tmp_path / "LATEST").read_text())
    import hashlib
    latest["manifest_sha256"] = hashlib.sha256(data).hexdigest()
    (tmp_path / "LATEST").write_text(json.dumps(latest))
    with pytest.raises(RemoteError, match=r"manifest.json is damaged: it gives 'a' the dtype object"):
        bsp.run(saves_objects, True, nprocs=2, checkpoint=tmp_path)


# -- the program's identity, and pybsp's version ----------------------------------------------

def test_the_same_name_with_other_code_is_refused_unless_forced(written):
    """LATEST names this program, with the SHA-256 of another (what a
    ck_prog.py:evolve of another folder, or this one edited, leaves)."""
    latest = json.loads((written / "LATEST").read_text())
    latest["program_sha256"] = "0" * 64
    latest["program_file"] = "/elsewhere/test_checkpoint_safety.py"
    (written / "LATEST").write_text(json.dumps(latest))
    with pytest.raises(CheckpointError, match=r"holds checkpoints of the program test_checkpoint_safety.py:saves of "
                                              r"/elsewhere/test_checkpoint_safety.py \(SHA-256 000000000000\), and "
                                              r"this is test_checkpoint_safety.py:saves of .*tests/checkpoint/"
                                              r"test_checkpoint_safety.py .*another program .*resume=\"force\""):
        bsp.run(saves, True, nprocs=2, checkpoint=written)
    assert bsp.run(saves, True, nprocs=2, checkpoint=written, resume="force") == [["step", "weights"]] * 2
    with pytest.raises(ValueError, match="resume must be None or 'force', not 'yes'"):
        bsp.run(saves, True, nprocs=2, checkpoint=written, resume="yes")


PROGRAM = textwrap.dedent('''
    import sys
    import bsp

    def evolve(world):
        state = world.restore()
        step = 0 if state is None else state["step"]
        world.save(step=step + {increment})
        return step

    print(bsp.run(evolve, nprocs=2, checkpoint=sys.argv[1], **dict(arg.split("=") for arg in sys.argv[2:])))
''')


@pytest.mark.mpi_skip
def test_another_folders_program_of_the_same_name_is_refused(tmp_path):
    """The issue's case: ck_prog.py:evolve of another folder, other code."""
    directory = tmp_path / "ck"
    scripts = {}
    for folder, increment in (("a", 1), ("b", 10), ("copy", 1)):
        (tmp_path / folder).mkdir()
        scripts[folder] = tmp_path / folder / "ck_prog.py"
        scripts[folder].write_text(PROGRAM.format(increment=increment))

    def run(folder, *options):
        env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
        return subprocess.run([sys.executable, str(scripts[folder]), str(directory), *options],
                              capture_output=True, text=True, env=env, timeout=120)
    assert run("a").stdout == "[0, 0]\n"
    refused = run("b")
    assert refused.returncode == 1 and "CheckpointError" in refused.stderr
    assert f"ck_prog.py:evolve of {scripts['a']}" in refused.stderr
    assert f"ck_prog.py:evolve of {scripts['b']}" in refused.stderr and 'resume="force"' in refused.stderr
    assert run("copy").stdout == "[1, 1]\n"         # the same program, copied elsewhere
    assert run("b", "resume=force").stdout == "[2, 2]\n"


def test_another_pybsp_versions_checkpoint_gets_a_warning_naming_both(written):
    latest = json.loads((written / "LATEST").read_text())
    latest["pybsp"] = "0.0.1"
    (written / "LATEST").write_text(json.dumps(latest))
    with pytest.warns(UserWarning, match=rf"written by pybsp 0.0.1; this is pybsp {bsp.__version__}"):
        bsp.run(saves, True, nprocs=2, checkpoint=written)
    with pytest.warns(UserWarning):
        bsp.run(saves, nprocs=2, checkpoint=written)        # this version's now
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        bsp.run(saves, True, nprocs=2, checkpoint=written)


# -- directories that cannot be written --------------------------------------------------------

def mount_tmpfs(where, options):
    where.mkdir(exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(where)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")


@pytest.fixture
def mounted(tmp_path):
    mounts = []

    def mount(name, options):
        where = tmp_path / name
        mount_tmpfs(where, options)
        mounts.append(where)
        return where
    yield mount
    for where in reversed(mounts):
        subprocess.run(["umount", str(where)], check=True)


def test_a_read_only_filesystem_is_a_checkpoint_error_naming_the_directory(mounted):
    require_nprocs(2)
    readonly = mounted("readonly", "size=64k,mode=0700,ro")
    with pytest.raises(CheckpointError, match=rf"cannot write into the checkpoint directory {readonly}/ck: "
                                              r"Read-only file system \[EROFS\]: it is on a read-only filesystem; "
                                              r"give bsp.run\(..., checkpoint=DIR\) a directory that you can write"):
        bsp.run(saves, nprocs=2, checkpoint=readonly / "ck")
    subprocess.run(["mount", "-o", "remount,rw", str(readonly)], check=True)
    (readonly / "ck").mkdir(mode=0o700)
    subprocess.run(["mount", "-o", "remount,ro", str(readonly)], check=True)
    with pytest.raises(CheckpointError, match=rf"directory {readonly}/ck: Read-only file system \[EROFS\]"):
        bsp.run(saves, nprocs=2, checkpoint=readonly / "ck")


def saves_a_lot(world):
    world.save(big=DistArray.zeros(world, (1 << 20,), dtype=np.float64))


def test_a_full_disk_during_a_save_is_a_checkpoint_error_naming_the_directory(mounted):
    require_nprocs(2)
    small = mounted("small", "size=256k,mode=0700")
    with pytest.raises(RemoteError, match=rf"CheckpointError: cannot write into the checkpoint directory {small}/ck: "
                                          r"No space left on device \[ENOSPC\]: the disk is full"):
        bsp.run(saves_a_lot, nprocs=2, checkpoint=small / "ck")


WITHOUT_OVERRIDE = textwrap.dedent('''
    import ctypes, sys
    import bsp

    def drop_dac_override():
        """Root without CAP_DAC_OVERRIDE (and its kin): file modes bind it as any user."""
        header = (ctypes.c_uint32 * 2)(0x20080522, 0)
        data = (ctypes.c_uint32 * 6)()
        libc = ctypes.CDLL(None, use_errno=True)
        assert libc.capget(header, data) == 0
        for word in (0, 1):         # effective, permitted (of the first 32 capabilities)
            data[word] &= ~0b1110   # CAP_DAC_OVERRIDE, CAP_DAC_READ_SEARCH, CAP_FOWNER
        assert libc.capset(header, data) == 0

    def saves(world):
        world.save(step=1)

    drop_dac_override()
    try:
        bsp.run(saves, nprocs=2, checkpoint=sys.argv[1])
    except bsp.CheckpointError as error:
        print(f"CheckpointError: {error}")
''')


@root_only
@pytest.mark.mpi_skip
def test_a_directory_without_write_permission_is_a_checkpoint_error_naming_it(tmp_path):
    locked = tmp_path / "locked"
    locked.mkdir(mode=0o500)
    done = subprocess.run([sys.executable, "-c", WITHOUT_OVERRIDE, "locked"], capture_output=True, text=True,
                          cwd=tmp_path, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"CheckpointError: cannot write into the checkpoint directory {locked}: "
                                  f"Permission denied [EACCES]: this user may not write there")
    assert os.listdir(locked) == []


# -- a new distribution on the same number of ranks -------------------------------------------

def on_a_grid(world, distribution=None):
    if distribution is None:
        a = DistArray.from_function(world, (6, 5), lambda i, j: i * 10.0 + j, distribution=("block", "block"),
                                    grid=(2, 2))
        world.save(a=a)
        return a.grid
    a = world.restore(distribution={"a": distribution})["a"]
    return a.distribution, a.grid, a.gather()


def test_a_new_distribution_on_the_same_ranks_chooses_its_own_grid(tmp_path):
    require_nprocs(4)
    assert bsp.run(on_a_grid, nprocs=4, checkpoint=tmp_path)[0] == (2, 2)
    distribution, grid, a = bsp.run(on_a_grid, ("block", None), nprocs=4, checkpoint=tmp_path)[0]
    assert distribution == ("block", None) and grid == (4, 1)
    assert np.array_equal(a, np.add.outer(np.arange(6) * 10.0, np.arange(5)))
