"""The two builds of the engine layer (setup.py, bsp/compiled.py) give the
same results, byte for byte: the random programs of test_properties.py,
run under each build in a process of its own, deliver the same logs (their
dill pickles compared).  The pure Python build is the reference."""

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bsp import compiled

PROGRAMS = int(os.environ.get("BSP_BUILD_PROGRAMS", 20))
TESTS = Path(__file__).resolve().parent.parent

# Run in each build's process: the same programs (hypothesis, derandomized,
# so every process draws the same ones), a digest of each program's logs.
DIGESTS = """
import hashlib, json, sys
import dill
from hypothesis import given, settings, HealthCheck
import bsp
from bsp import compiled
from test_properties import execute, programs

digests = []

@settings(max_examples=int(sys.argv[1]), derandomize=True, database=None, deadline=None,
          suppress_health_check=list(HealthCheck))
@given(programs())
def collect(program):
    nprocs, pool, plan = program
    logs = bsp.run(execute, pool, plan, nprocs=nprocs)
    digests.append(hashlib.sha256(dill.dumps((nprocs, plan, logs), protocol=5)).hexdigest())

collect()
print(json.dumps({"build": compiled.describe(), "compiled": compiled.COMPILED, "digests": digests}))
"""


def digests(pure: bool) -> dict:
    env = {**os.environ, "PYTHONHASHSEED": "0", "BSP_PURE_PYTHON": "1" if pure else "0",
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(TESTS / "core")])}
    done = subprocess.run([sys.executable, "-c", DIGESTS, str(PROGRAMS)], env=env, capture_output=True,
                          text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.splitlines()[-1])


@pytest.mark.mpi_skip
@pytest.mark.skipif(not compiled.installed(), reason="no compiled build to compare: " + compiled.describe())
def test_the_compiled_build_gives_the_pure_builds_results_byte_for_byte():
    pure, fast = digests(pure=True), digests(pure=False)
    assert not pure["compiled"] and fast["compiled"], (pure["build"], fast["build"])
    assert len(pure["digests"]) == PROGRAMS
    assert fast["digests"] == pure["digests"]
