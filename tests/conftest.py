"""The suite runs on the fork backend (plain pytest) and, unchanged, on the
MPI backend (`mpiexec -n N python -m pytest --with-mpi`): bsp.testing's
plugin makes rank 0 run the tests while the other ranks serve its runs.

Every test checks that its runs left nothing behind (see leftovers.py).  The
run gets a private temp directory first, before anything forks, so that
every process it starts inherits it."""

import pytest

import leftovers

leftovers.use_private_tempdir()

pytest_plugins = ["bsp.testing"]


@pytest.fixture(autouse=True)
def nothing_left_behind():
    before = leftovers.snapshot()
    yield
    left = leftovers.new_since(before)
    assert not left, f"the test left things behind: {left}"
