"""The two builds of the engine layer (setup.py, bsp/compiled.py) give the
same results, byte for byte: random programs of test_properties.py, drawn
once, run under each build in a process of its own, deliver the same logs
(their dill pickles compared).  The pure Python build is the reference."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bsp import compiled

PROGRAMS = int(os.environ.get("BSP_BUILD_PROGRAMS", 30))
TESTS = Path(__file__).resolve().parent.parent

# The programs, drawn once (hypothesis, derandomized) and saved with dill:
# drawn in each build's process, they differ (hypothesis's generation is not
# the same sequence there), so both builds run the programs of one file.
DRAW = """
import sys
import dill
from hypothesis import HealthCheck, given, settings
from test_properties import programs

drawn = []

@settings(max_examples=int(sys.argv[1]), derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(programs())
def draw(program):
    drawn.append(program)

draw()
with open(sys.argv[2], "wb") as file:
    dill.dump(drawn, file)
"""

# Run in each build's process: each program of the file, a digest of its logs.
DIGESTS = """
import hashlib, json, sys
import dill
import bsp
from bsp import compiled
from test_properties import execute

with open(sys.argv[1], "rb") as file:
    drawn = dill.load(file)
digests = []
for nprocs, pool, plan in drawn:
    logs = bsp.run(execute, pool, plan, nprocs=nprocs)
    digests.append(hashlib.sha256(dill.dumps((nprocs, plan, logs), protocol=5)).hexdigest())
print(json.dumps({"build": compiled.describe(), "compiled": compiled.COMPILED, "digests": digests}))
"""


# Run in each build's process: every case of the bad-input catalogue
# (tests/bad_inputs.py), the exception each raises, with its message.
BAD_INPUTS = """
import re
import bsp
from bad_inputs import IN_RANK, NPROCS, OUTSIDE

def caught(world, index):
    case = IN_RANK[index]
    try:
        made = case.setup(world)
        if world.pid == 0:
            case.call(world, made)
    except Exception as error:
        return f"{type(error).__name__}: {error}"
    return None

def shown(text):
    return re.sub(r"0x[0-9a-f]+|pid [0-9]+|/tmp/[^ ]*", "", str(text))

for index, case in enumerate(IN_RANK):
    try:
        print(case.what, "|", shown(bsp.run(caught, index, nprocs=NPROCS)[0]))
    except Exception as error:      # a case that the catalogue's own test finds broken
        print(case.what, "| the run:", shown(f"{type(error).__name__}: {error}"))
for case in OUTSIDE:
    try:
        case.call()
        print(case.what, "| no error")
    except Exception as error:
        print(case.what, "|", shown(f"{type(error).__name__}: {error}"))
"""


def python(code: str, *args: str, pure: bool = True) -> str:
    """Run `code` in a process of its own on one build; its output."""
    env = {**os.environ, "PYTHONHASHSEED": "0", "BSP_PURE_PYTHON": "1" if pure else "0",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS / "core")])}
    done = subprocess.run([sys.executable, "-c", code, *args], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr
    return done.stdout


def digests(drawn: Path, pure: bool) -> dict:
    return json.loads(python(DIGESTS, str(drawn), pure=pure).splitlines()[-1])


@pytest.mark.mpi_skip
@pytest.mark.skipif(not compiled.installed(), reason="no compiled build to compare: " + compiled.describe())
def test_the_compiled_build_gives_the_pure_builds_results_byte_for_byte(tmp_path):
    drawn = tmp_path / "programs.dill"
    python(DRAW, str(PROGRAMS), str(drawn))
    pure, fast = digests(drawn, pure=True), digests(drawn, pure=False)
    assert not pure["compiled"] and fast["compiled"], (pure["build"], fast["build"])
    assert len(pure["digests"]) == PROGRAMS
    assert fast["digests"] == pure["digests"]


@pytest.mark.mpi_skip
@pytest.mark.skipif(not compiled.installed(), reason="no compiled build to compare: " + compiled.describe())
def test_every_bad_input_raises_the_same_error_on_both_builds():
    """The API's checks run before any compiled code: a type that a compiled
    annotation would refuse is the API's own error, on both builds."""
    pure, fast = python(BAD_INPUTS, pure=True), python(BAD_INPUTS, pure=False)
    assert len(pure.splitlines()) > 100
    assert fast.splitlines() == pure.splitlines()


def test_a_changed_source_makes_the_build_stale(tmp_path, monkeypatch):
    """A compiled module whose source no longer matches its digest is never
    run: the build is stale, and the process runs pure Python."""
    manifest = tmp_path / "compiled_sources.json"
    engine = compiled._source("bsp.core.engine")
    manifest.write_text(json.dumps({"modules": {"bsp.core.engine": "0" * 64}}))
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    found = compiled._examine()
    assert found[0] == "stale" and found[1] == ["bsp.core.engine"], found
    manifest.write_text(json.dumps({"modules": {"bsp.core.engine": compiled._digest(engine)}}))
    assert compiled._examine()[0] == ("compiled" if compiled._extension("bsp.core.engine") else "stale")
    monkeypatch.setattr(compiled, "MANIFEST", tmp_path / "none.json")
    assert compiled._examine() == ("pure", [])


def test_a_changed_c_source_makes_the_build_stale(tmp_path, monkeypatch):
    """The module written in C is checked by its .c source's digest, as
    the others by their .py's."""
    manifest = tmp_path / "compiled_sources.json"
    source = compiled._source("bsp.core.streaming_copy")
    assert source.suffix == ".c"
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    manifest.write_text(json.dumps({"modules": {"bsp.core.streaming_copy": "0" * 64}}))
    assert compiled._examine() == ("stale", ["bsp.core.streaming_copy"])
    manifest.write_text(json.dumps({"modules": {"bsp.core.streaming_copy": compiled._digest(source)}}))
    built = compiled._extension("bsp.core.streaming_copy") is not None
    assert compiled._examine() == (("compiled", ["bsp.core.streaming_copy"]) if built
                                   else ("stale", ["bsp.core.streaming_copy"]))


def test_a_changed_list_of_compiled_modules_makes_the_build_stale(tmp_path, monkeypatch):
    """In a checkout, a setup.py changed since the build (its COMPILED list,
    say) makes the build stale, so that scripts/setup builds it again."""
    manifest = tmp_path / "compiled_sources.json"
    engine = compiled._source("bsp.core.engine")
    monkeypatch.setattr(compiled, "MANIFEST", manifest)
    modules = {"bsp.core.engine": compiled._digest(engine)}
    manifest.write_text(json.dumps({"modules": modules, "setup": "0" * 64}))
    found = compiled._examine()
    assert found[0] == "stale" and found[1][-1] == "setup.py", found
    manifest.write_text(json.dumps({"modules": modules, "setup": compiled._digest(compiled.ROOT / "setup.py")}))
    assert "setup.py" not in compiled._examine()[1]


@pytest.mark.mpi_skip
def test_bsp_pure_python_loads_the_sources():
    where = "import bsp.core.engine, mpi_backend.transport as t; print(bsp.core.engine.__file__, t.__file__)"
    assert [path.endswith(".py") for path in python(where, pure=True).split()] == [True, True]
    if compiled.installed():
        assert [path.endswith(".so") for path in python(where, pure=False).split()] == [True, True]


@pytest.mark.mpi_skip
def test_the_module_written_in_c_runs_in_the_compiled_build_only():
    """bsp/core/streaming_copy.c has no Python source to fall back on: a
    process that runs pure Python refuses to load it, and the engine's
    send's copy is a slice assignment instead."""
    code = ("import bsp.core.buffers as buffers\n"
            "print(buffers._copy_streaming is not None)\n"
            "try:\n    import bsp.core.streaming_copy\nexcept ModuleNotFoundError as error:\n    print(error)\n")
    pure = python(code, pure=True).splitlines()
    assert pure[0] == "False" and "written in C, part of the compiled build" in pure[1], pure
    if compiled.installed():
        assert python(code, pure=False).splitlines() == ["True"]


@pytest.mark.skipif(not compiled.COMPILED, reason="the streaming copy is the compiled build's: " + compiled.describe())
def test_the_streaming_copy_copies_every_byte_from_any_alignment():
    import numpy as np

    from bsp.core.streaming_copy import copy_into

    source = np.random.default_rng(0).integers(0, 256, 4096 + 200, dtype=np.uint8)
    for length in (0, 1, 15, 16, 63, 64, 65, 127, 1000, 4096 + 77):
        for start in range(0, 17, 3):
            for at in range(0, 17, 5):
                dest = np.zeros(length + 40, np.uint8)
                copy_into(memoryview(dest)[at:], memoryview(source)[start:start + length])
                assert np.array_equal(dest[at:at + length], source[start:start + length])
                assert not dest[:at].any() and not dest[at + length:].any()
    with pytest.raises(ValueError, match="100 bytes do not fit in 99"):
        copy_into(memoryview(bytearray(99)), memoryview(bytes(100)))
    with pytest.raises(BufferError):
        copy_into(memoryview(bytes(100)), memoryview(bytes(10)))     # not writable
