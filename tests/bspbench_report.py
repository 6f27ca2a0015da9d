"""The check of examples/bspbench.py's report, shared by the fork and MPI
examples' tests (tests/frontends/test_examples.py, tests/mpi_backend/test_mpi.py)."""

import numpy as np


def check_bspbench_output(text, nprocs, maxh):
    """bspbench's report: the rates, one time per h, two fits, the bottom line."""
    lines = text.splitlines()
    assert lines[0] == f"Using {nprocs} processors"
    rates = [line for line in lines if line.startswith("n= ")]
    assert [int(line.split()[1]) for line in rates] == [2 ** k for k in range(11)]
    times = [line for line in lines if line.startswith("Time of ")]
    assert [int(line.split()[2].split("-")[0]) for line in times] == list(range(maxh + 1))
    assert all(float(line.split("= ")[1].split()[0]) > 0 for line in times)
    fits = [line for line in lines if line.startswith("Range h=")]
    assert len(fits) == 2 and all(" us/word, l= " in line for line in fits)
    assert lines[-2] == "The bottom line for this BSP computer is:"
    p, r, g, l = (part.split("= ")[1] for part in lines[-1].split(" (")[0].split(", "))
    assert int(p) == nprocs and float(r.split()[0]) > 0
    assert all(np.isfinite(float(value)) for value in (g, l))
