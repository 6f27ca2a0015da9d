"""Every case of the bad-input catalogue (tests/bad_inputs.py) raises its
error at the call, on the calling rank, with a message that names the
problem; and docs/errors.md lists them all, with their messages."""

import pytest
from bad_inputs import IN_RANK, NPROCS, OUTSIDE
from error_catalogue import ROOT, render

from bsp.launch.mpi_environment import launched_by_mpi
from bsp.testing import require_nprocs, run_spmd


def raise_case(world, index):
    case = IN_RANK[index]
    made = case.setup(world)
    if world.pid == 0:
        with pytest.raises(case.error, match=case.message):
            case.call(world, made)


@pytest.mark.parametrize("index", range(len(IN_RANK)), ids=[case.what for case in IN_RANK])
def test_a_bad_call_raises_at_the_call_on_the_calling_rank(index):
    require_nprocs(NPROCS)
    run_spmd(raise_case, NPROCS, {"index": index})


@pytest.mark.parametrize("case", OUTSIDE, ids=[case.what for case in OUTSIDE])
def test_a_bad_call_in_the_launching_process(case):
    if launched_by_mpi() and not case.mpi:
        pytest.skip("a setting of the fork backend")
    with pytest.raises(case.error, match=case.message):
        case.call()


@pytest.mark.mpi_skip
def test_the_docs_page_lists_every_case_with_its_message():
    assert (ROOT / "docs" / "errors.md").read_text() == render(), \
        "docs/errors.md is out of date: run tests/error_catalogue.py"
