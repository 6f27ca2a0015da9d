"""The Chrome trace of a profiled run, and its PNG timeline."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import bsp
from bsp.observe import trace
from bsp.testing import require_nprocs

HERE = Path(__file__).name

BIN = Path(sys.executable).parent
PHASES = {"X", "C", "M"}


def program(world, steps):
    for step in range(steps):
        world.send(np.full(50, step), (world.pid + 1) % world.nprocs)
        world.sync()
    return world.allreduce(world.pid)


def check_trace_events(events, nprocs, supersteps):
    """The Trace Event format's required keys and types, and pybsp's layout:
    per rank, three spans per superstep, back to back, and a counter."""
    for event in events:
        for key in trace.REQUIRED_KEYS:
            assert key in event, (key, event)
        assert event["ph"] in PHASES and isinstance(event["name"], str)
        assert isinstance(event["pid"], int) and isinstance(event["tid"], int)
        assert isinstance(event["ts"], (int, float)) and isinstance(event["args"], dict)
        if event["ph"] == "X":
            assert isinstance(event["dur"], (int, float)) and event["dur"] >= 0
        if event["ph"] == "C":
            assert all(isinstance(value, (int, float)) for value in event["args"].values())
    assert sorted(event["pid"] for event in events if event["name"] == "process_name") == list(range(nprocs))
    for rank in range(nprocs):
        spans = [event for event in events if event["ph"] == "X" and event["pid"] == rank]
        assert [span["name"] for span in spans] == list(trace.SPANS) * supersteps
        assert [span["args"]["superstep"] for span in spans] == [step for step in range(supersteps) for _ in range(3)]
        for earlier, later in zip(spans, spans[1:]):
            assert earlier["ts"] + earlier["dur"] <= later["ts"]          # never overlapping
        counters = [event for event in events if event["ph"] == "C" and event["pid"] == rank]
        assert len(counters) == supersteps and all(set(c["args"]) == {"sent", "received"} for c in counters)


@pytest.mark.parametrize("nprocs", [1, 2, 3])
def test_the_trace_holds_every_superstep_of_every_rank(tmp_path, nprocs):
    require_nprocs(nprocs)
    path = tmp_path / "trace.json"
    assert bsp.run(program, 3, nprocs=nprocs, trace=path) == [sum(range(nprocs))] * nprocs
    data = json.loads(path.read_text())
    check_trace_events(data["traceEvents"], nprocs, supersteps=5)
    assert data["otherData"]["runs"][0]["program"] == "program"
    compute = [event for event in data["traceEvents"] if event["name"] == "compute" and event["pid"] == 0]
    assert compute[0]["args"]["call"].startswith("sync at test_trace.py:")
    assert compute[0]["args"]["bytes_sent"] == compute[0]["args"]["bytes_received"] > 400
    assert compute[3]["args"]["call"].startswith("allreduce at test_trace.py:")


def test_runs_of_one_process_to_one_file_share_it(tmp_path):
    require_nprocs(2)
    path = tmp_path / "trace.json"
    bsp.run(program, 1, nprocs=2, trace=path)
    bsp.run(program, 2, nprocs=2, trace=path)
    data = trace.read(path)
    assert [run["program"] for run in data["otherData"]["runs"]] == ["program", "program"]
    events = data["traceEvents"]
    assert sum(event["name"] == "process_name" for event in events) == 2
    computes = [event for event in events if event["name"] == "compute" and event["pid"] == 1]
    assert len(computes) == 3 + 4
    assert computes[3]["ts"] > computes[2]["ts"]                        # the second run comes after


def test_a_trace_alone_prints_no_table(tmp_path, capsys, monkeypatch):
    require_nprocs(2)
    monkeypatch.setenv("BSP_TRACE", str(tmp_path / "from_env.json"))
    bsp.run(program, 1, nprocs=2)
    assert "pybsp profile" not in capsys.readouterr().err
    check_trace_events(trace.read(tmp_path / "from_env.json")["traceEvents"], 2, supersteps=3)


@pytest.mark.parametrize("text, message", [
    ("not json", "is not JSON"),
    ('{"events": []}', "is not a Chrome trace: it has no list of traceEvents"),
    ("[1, 2]", "is not a Chrome trace"),
])
def test_reading_what_is_not_a_trace(tmp_path, text, message):
    path = tmp_path / "bad.json"
    path.write_text(text)
    with pytest.raises(ValueError, match=message):
        trace.read(path)


def test_png_timeline(tmp_path):
    pytest.importorskip("matplotlib")
    require_nprocs(2)
    profiles = []
    bsp.run(program, 2, nprocs=2, profile=profiles.append, trace=tmp_path / "t.json")
    from bsp.observe import timeline
    timeline.plot(profiles[0], tmp_path / "from_profile.png")
    timeline.plot(tmp_path / "t.json", tmp_path / "from_file.png")
    for name in ("from_profile.png", "from_file.png"):
        assert (tmp_path / name).read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # each superstep's end marked, and labelled with the call that ended it and its site
    axes, line = timeline.figure_of(profiles[0]).axes[0], program.__code__.co_firstlineno
    assert [text.get_text() for text in axes.texts] == [
        f"0: sync at {HERE}:{line + 3} in program", f"1: sync at {HERE}:{line + 3} in program",
        f"2: allreduce at {HERE}:{line + 4} in program", f"3: exit at {HERE}:{line} in program"]
    assert len(axes.lines) == 4
    with pytest.raises(ValueError, match="nothing to draw"):
        timeline.plot([], tmp_path / "empty.png")


@pytest.mark.mpi_skip
def test_bsp_profile_plot(tmp_path):
    pytest.importorskip("matplotlib")
    bsp.run(program, 2, nprocs=2, trace=tmp_path / "t.json")
    done = subprocess.run([str(BIN / "bsp"), "profile", "plot", str(tmp_path / "t.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout == f"wrote {tmp_path / 't.png'}\n"
    assert (tmp_path / "t.png").read_bytes()[:4] == b"\x89PNG"
    (tmp_path / "bad.json").write_text("{}")
    done = subprocess.run([str(BIN / "bsp"), "profile", "plot", str(tmp_path / "bad.json")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 1 and "is not a Chrome trace" in done.stderr
