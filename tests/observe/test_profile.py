"""The superstep profile: exact counts of supersteps, bytes and messages on
every rank, call sites, the table and the BSP prediction, the options of
bsp.run and `bsp run --profile`.  Timings are never asserted, only how
they relate (a sync is never shorter than its wait, the supersteps add up
to the run)."""

import functools
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bsp
from bsp.launch import profile_request
from bsp.observe import units
from bsp.core import plain_arrays, wire
from bsp.machine import MachineParameters
from bsp.core.sync_record import Kind
from bsp.testing import require_nprocs

HERE = Path(__file__).resolve()
ROOT = HERE.parents[2]
BIN = Path(sys.executable).parent
PAYLOAD = b"x" * 1000
ARRAY = np.arange(1000, dtype=np.float64)       # 8000 bytes, out of band


def line_of(marker: str) -> int:
    """The line of this file that ends with the comment `# marker`."""
    lines = HERE.read_text().splitlines()
    return next(number for number, line in enumerate(lines, 1) if line.endswith(f"# {marker}"))


def message_bytes(obj, array_bulk_from: int = plain_arrays.INBAND_LIMIT) -> int:
    """What one message of `obj` adds to h: its pickle and bulk buffers
    (from `array_bulk_from` bytes on, an array's data is a bulk buffer)."""
    data, buffers = wire.dumps(obj, array_bulk_from)
    return len(data) + sum(buffer.nbytes for buffer in buffers)


def array_bulk_from(world):
    """Where this run's transport has an array's data travel as a bulk buffer."""
    return world.engine.array_bulk_from


def known(world):
    right = (world.pid + 1) % world.nprocs
    world.send(PAYLOAD, right)
    world.send(ARRAY, right)
    world.sync()                                            # first sync
    world.sync()                                            # empty sync
    world.allgather(world.pid)                              # the allgather
    return world.pid


def profiled(program, *args, nprocs, **kwargs):
    """(results, Profile) of a profiled run."""
    profiles = []
    results = bsp.run(program, *args, nprocs=nprocs, profile=profiles.append, **kwargs)
    [result] = profiles
    return results, result


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_known_supersteps_bytes_and_messages_on_every_rank(nprocs):
    require_nprocs(nprocs)
    results, profile = profiled(known, nprocs=nprocs)
    assert results == list(range(nprocs))
    assert profile.nprocs == nprocs and profile.supersteps == 4
    assert profile.kinds.tolist() == [Kind.SYNC, Kind.SYNC, Kind.ALLGATHER, Kind.EXIT]
    bulk_from = bsp.run(array_bulk_from, nprocs=nprocs)[0]
    sent = message_bytes(PAYLOAD, bulk_from) + message_bytes(ARRAY, bulk_from)
    gathered = sum(message_bytes(pid) for pid in range(nprocs))
    for rank in range(nprocs):
        assert profile.bytes_sent[rank].tolist() == [sent, 0, nprocs * message_bytes(rank), 0]
        assert profile.bytes_received[rank].tolist() == [sent, 0, gathered, 0]
        assert profile.messages_sent[rank].tolist() == [2, 0, nprocs, 0]
        assert profile.messages_received[rank].tolist() == [2, 0, nprocs, 0]
        assert profile.exchanges[rank].tolist() == [1, 1, 1, 1]
        lines = [line_of("first sync"), line_of("empty sync"), line_of("the allgather"), known.__code__.co_firstlineno]
        assert profile.sites[rank] == [f"{HERE}:{line} in known" for line in lines]
    assert profile.h_max.tolist() == [sent, 0, max(gathered, nprocs * message_bytes(nprocs - 1)), 0]


def with_a_get(world):
    xs = world.coarray(100, dtype=np.int64)
    xs.local[:] = world.pid
    world.sync()
    window = xs[(world.pid + 1) % world.nprocs, 0:10]       # the get
    world.sync()                                            # sync with the get
    return int(window.value.sum())


def test_a_sync_with_gets_takes_two_exchanges_and_the_prediction_counts_both():
    require_nprocs(2)
    results, profile = profiled(with_a_get, nprocs=2)
    assert results == [10, 0]
    assert profile.exchanges.tolist() == [[1, 2, 1]] * 2
    assert profile.messages_sent[:, 1].tolist() == [2, 2]            # a request, and the reply to the other's
    assert profile.messages_received[:, 1].tolist() == [2, 2]
    assert profile.bytes_received[:, 1].min() > 80                   # the reply carries 10 int64
    machine = MachineParameters(r=1e9, g=2e-9, l=3e-5, nprocs=2, backend="fork")
    expected = profile.w_max + 2e-9 * profile.h_max + 3e-5 * np.array([1, 2, 1])
    assert np.allclose(profile.predicted(machine), expected, rtol=0, atol=1e-15)


def uneven(world, steps):
    for step in range(steps):
        world.send(np.zeros(100 * (world.pid + 1)), 0)
        world.sync()                                        # uneven sync
    return world.superstep


def test_times_fit_together():
    require_nprocs(2)
    _, profile = profiled(uneven, 5, nprocs=2)
    assert profile.supersteps == 6
    assert (profile.compute >= 0).all() and (profile.sync >= 0).all()
    assert (profile.waiting.min(axis=0) == 0).all()          # the last rank to arrive waits for nobody
    assert (np.diff(profile.left, axis=1) >= 0).all()
    assert profile.measured.sum() == pytest.approx(profile.left.max() - profile.start.min(), abs=1e-12)
    assert (profile.sync_time <= profile.measured + 1e-12).all()     # the sync is part of its superstep
    assert profile.bytes_received[0, :5].tolist() == [message_bytes(np.zeros(100)) + message_bytes(np.zeros(200))] * 5
    assert profile.bytes_received[1].tolist() == [0] * 6


def test_a_profiled_run_returns_what_an_unprofiled_one_does():
    require_nprocs(2)
    assert profiled(uneven, 3, nprocs=2)[0] == bsp.run(uneven, 3, nprocs=2) == [3, 3]


def engine_class(world):
    return type(world._engine).__name__


def test_without_profiling_the_ranks_run_the_plain_engine(monkeypatch):
    require_nprocs(2)
    monkeypatch.setenv("BSP_PROGRESS", "0")
    assert bsp.run(engine_class, nprocs=2) == ["Engine", "Engine"]
    assert profiled(engine_class, nprocs=2)[0] == ["ObservedEngine", "ObservedEngine"]


MACHINE = MachineParameters(r=2e9, g=1e-9, l=2e-5, nprocs=2, backend="fork", measured="2026-01-01 00:00:00")


def test_the_report_shows_supersteps_and_the_prediction():
    require_nprocs(2)
    _, profile = profiled(known, nprocs=2)
    report = profile.report(MACHINE)
    lines = report.splitlines()
    assert lines[0].startswith("pybsp profile of known: 2 ranks") and "4 supersteps" in lines[0]
    assert lines[1].split()[:2] == ["step", "call"]
    assert f"sync at test_profile.py:{line_of('first sync')} in known" in lines[2]
    assert f"allgather at test_profile.py:{line_of('the allgather')} in known" in lines[4]
    assert f"exit at test_profile.py:{known.__code__.co_firstlineno} in known" in lines[5]
    assert lines[6].startswith("total")
    predicted, measured = profile.predicted(MACHINE).sum(), profile.measured.sum()
    assert f"= {units.seconds(predicted)}, measured {units.seconds(measured)}" in lines[7]
    assert units.percent(predicted, measured) in lines[7]
    spread = units.seconds(profile.start.max() - profile.start.min())
    assert lines[8] == f"the ranks started within {spread} of each other: superstep 0's measured time includes that"
    assert "g = 1 ns/byte, l = 20 us (fork backend, nprocs = 2" in lines[9]


def test_many_supersteps_are_aggregated_by_call_site():
    require_nprocs(2)
    _, profile = profiled(uneven, 30, nprocs=2)
    report = profile.report(MACHINE)
    rows = report.splitlines()
    assert rows[1].split()[:3] == ["call", "site", "count"]
    assert f"sync at test_profile.py:{line_of('uneven sync')} in uneven" in rows[2]
    assert rows[2].split()[rows[2].split().index("uneven") + 1] == "30"
    assert rows[4].startswith("total") and rows[4].split()[1] == "31"
    assert profile.report(MACHINE, by="superstep").count("\n") == 31 + 5       # title, header, total, 3 lines below
    with pytest.raises(ValueError, match="by must be 'auto', 'superstep' or 'site', not 'rank'"):
        profile.report(MACHINE, by="rank")


def test_the_report_names_parameters_measured_for_another_run():
    require_nprocs(2)
    _, profile = profiled(known, nprocs=2)
    other = MachineParameters(r=1e9, g=1e-9, l=1e-5, nprocs=8, backend="mpi")
    assert "NOTE: this run used nprocs = 2" in profile.report(other)


def test_profile_true_prints_the_table_with_g_and_l_from_bsp_machine(tmp_path, monkeypatch, capsys):
    require_nprocs(2)
    path = tmp_path / "machine.json"
    MACHINE.save(str(path))
    monkeypatch.setenv("BSP_MACHINE", str(path))
    assert bsp.run(known, nprocs=2, profile=True) == [0, 1]
    err = capsys.readouterr().err
    assert "pybsp profile of known: 2 ranks" in err and "BSP prediction T = sum(w_max + g*h_max + l)" in err
    assert "g = 1 ns/byte, l = 20 us" in err and "measuring" not in err


def test_profile_given_a_machine_file_uses_it(tmp_path, capsys):
    require_nprocs(2)
    path = tmp_path / "machine.json"
    MachineParameters(r=2e9, g=5e-9, l=7e-5, nprocs=2, backend="fork").save(str(path))
    bsp.run(known, nprocs=2, profile=path)
    assert "g = 5 ns/byte, l = 70 us" in capsys.readouterr().err


def test_without_a_machine_file_g_and_l_are_measured_on_the_spot_once(monkeypatch, capsys):
    require_nprocs(2)
    monkeypatch.delenv("BSP_MACHINE", raising=False)
    monkeypatch.setenv("BSP_PROFILE", "1")          # the measurement's own runs must not be profiled
    monkeypatch.setattr(profile_request, "SPOT_REPETITIONS", 10)
    monkeypatch.setattr(profile_request, "_spot", {})
    bsp.run(known, nprocs=2)
    bsp.run(known, nprocs=2)
    err = capsys.readouterr().err
    assert err.count("pybsp: measuring g and l for the profile (2 ranks") == 1
    assert err.count("pybsp profile of") == 2
    backend = profile_request._spot and next(iter(profile_request._spot))[1]
    assert f"({backend} backend, nprocs = 2, measured 20" in err


def test_bsp_profile_environment(monkeypatch, tmp_path, capsys):
    require_nprocs(2)
    MACHINE.save(str(tmp_path / "machine.json"))
    monkeypatch.setenv("BSP_MACHINE", str(tmp_path / "machine.json"))
    monkeypatch.setenv("BSP_PROFILE", "1")
    bsp.run(known, nprocs=2)
    assert "pybsp profile of known" in capsys.readouterr().err
    bsp.run(known, nprocs=2, profile=False)         # an explicit option wins
    monkeypatch.setenv("BSP_PROFILE", "0")
    bsp.run(known, nprocs=2)
    assert "pybsp profile" not in capsys.readouterr().err
    monkeypatch.setenv("BSP_PROFILE", "yes")
    with pytest.raises(ValueError, match="BSP_PROFILE must be 1 .profile the runs. or 0, not 'yes'"):
        bsp.run(known, nprocs=2)


def takes_a_profile(world, profile=None):
    return profile


def takes_anything(world, **options):
    return sorted(options)


@pytest.mark.parametrize("options, error, message", [
    ({"profile": "yes"}, ValueError, "profile: no such machine file 'yes' .write one with `bsp bench --out"),
    ({"profile": 3}, TypeError, "profile must be True, False, the path of a machine file .* not 'int'"),
    ({"trace": "/no/such/directory/trace.json"}, ValueError,
     "trace: the directory '/no/such/directory' of '/no/such/directory/trace.json' does not exist"),
    ({"trace": 5}, TypeError, "trace must be the path of a file to write, not 'int'"),
    ({"trace": "."}, ValueError, "trace must be the path of a file to write, not the directory '.'"),
])
def test_bad_options_raise_at_the_call(options, error, message):
    with pytest.raises(error, match=message):
        bsp.run(known, nprocs=1, **options)


def test_a_file_that_holds_no_machine_parameters(tmp_path):
    path = tmp_path / "other.json"
    path.write_text('{"r": 1}')
    with pytest.raises(ValueError, match="is not a machine file written by `bsp bench --out` .* lacks g, l"):
        bsp.run(known, nprocs=1, profile=str(path))


def test_a_program_with_a_parameter_named_like_an_option_is_told_how_to_pass_it():
    with pytest.raises(TypeError, match="the program also takes a parameter named 'profile': pass the program's "
                                        r"profile with functools.partial\(program, profile=...\)"):
        bsp.run(takes_a_profile, nprocs=1, profile=True)
    assert bsp.run(functools.partial(takes_a_profile, profile="mine"), nprocs=1) == ["mine"]
    assert bsp.run(takes_anything, nprocs=1, profile=lambda result: None, other=1) == [["other"]]


def failing(world):
    world.sync()
    if world.pid == 1:
        raise RuntimeError("rank 1 fails")
    world.sync()


def test_a_failing_profiled_run_raises_as_usual():
    require_nprocs(2)
    called = []
    with pytest.raises(bsp.RemoteError, match="rank 1 fails"):
        bsp.run(failing, nprocs=2, profile=called.append)
    assert called == []


# (not the id "mpi": pytest-mpi would take it for its marker)
BACKENDS = [pytest.param("fork", id="fork_backend"), pytest.param("mpi", id="mpi_backend")]


@pytest.mark.mpi_skip
@pytest.mark.parametrize("backend", BACKENDS)
def test_bsp_run_profile_and_machine_print_the_table(backend, tmp_path):
    if backend == "mpi" and not (BIN / "mpiexec").exists():
        pytest.skip("no mpiexec beside this Python")
    script = tmp_path / "prog.py"
    script.write_text("import bsp\n\ndef program(world):\n    return world.allreduce(world.pid)\n\n"
                      "print(bsp.run(program))\n")
    MachineParameters(r=2e9, g=1e-9, l=2e-5, nprocs=2, backend=backend).save(str(tmp_path / "m.json"))
    command = [BIN / "bsp", "run", "-n", "2", *(["--mpi"] if backend == "mpi" else []),
               "--machine", tmp_path / "m.json", "--trace", tmp_path / "t.json", script]
    done = subprocess.run([str(part) for part in command], capture_output=True, text=True, timeout=300,
                          env={key: value for key, value in os.environ.items() if not key.startswith("BSP_")})
    assert done.returncode == 0, done.stderr
    assert done.stdout == "[1, 1]\n"
    assert f"pybsp profile of program: 2 ranks, {backend} backend, 2 supersteps" in done.stderr
    assert "allreduce at prog.py:4 in program" in done.stderr and "measuring" not in done.stderr
    assert (tmp_path / "t.json").stat().st_size > 0


@pytest.mark.mpi_skip
@pytest.mark.parametrize("options, message", [
    (["--machine", "/no/such.json"], "bsp run: --machine: no such machine file '/no/such.json'"),
    (["--trace", "/no/such/dir/t.json"], "bsp run: --trace: the directory '/no/such/dir'"),
])
def test_bsp_run_refuses_bad_profile_options(options, message):
    done = subprocess.run([str(BIN / "bsp"), "run", *options, str(ROOT / "examples" / "hello.py")],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and message in done.stderr and done.stdout == ""
