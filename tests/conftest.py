"""Every test checks that the runs it made left nothing behind: no child
process, no /dev/shm entry, no shared mapping in this process, no temp file."""

import glob
import os
import tempfile

import psutil
import pytest


def _shared_mappings() -> list[str]:
    try:
        with open("/proc/self/maps") as maps:
            return [line for line in maps if " rw-s " in line]
    except FileNotFoundError:       # not Linux
        return []


def _snapshot() -> dict:
    return {
        "children": {child.pid for child in psutil.Process().children(recursive=True)},
        "/dev/shm": set(glob.glob("/dev/shm/*")),
        "shared mappings": set(_shared_mappings()),
        # pytest's own tmp_path root appears on first use: not ours
        "temp files": {name for name in os.listdir(tempfile.gettempdir()) if not name.startswith("pytest-of-")},
    }


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = _snapshot()
    yield
    after = _snapshot()
    leftovers = {kind: sorted(after[kind] - before[kind]) for kind in before}
    leftovers = {kind: items for kind, items in leftovers.items() if items}
    assert not leftovers, f"the test left things behind: {leftovers}"
