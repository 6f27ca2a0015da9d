"""The fast subset of the fault-injection suite (tests/fault_injection.py
runs the long one): every kind of fault, on both backends, ends in its
documented error naming the rank, promptly, with nothing left behind.  Each
MPI trial is a job of its own, started from this (fork) leg of the suite."""

import sys
from pathlib import Path

import pytest

import fault_injection as faults

pytestmark = pytest.mark.mpi_skip
MPIEXEC = Path(sys.executable).parent / "mpiexec"


@pytest.mark.parametrize("trial", faults.plan(2, faults.kinds_for("fork"), seed=7),
                         ids=lambda trial: f"{trial.kind}-nprocs={trial.nprocs}-rank={trial.rank}")
def test_a_fault_on_the_fork_backend(trial):
    done = faults.run_trial(trial, "fork")
    assert done.held, done.detail


@pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec beside this Python")
@pytest.mark.parametrize("trial", faults.plan(1, faults.kinds_for("mpi"), seed=11),
                         ids=lambda trial: f"{trial.kind}-nprocs={trial.nprocs}-rank={trial.rank}")
def test_a_fault_under_mpi(trial):
    done = faults.run_trial(trial, "mpi")
    assert done.held, done.detail
