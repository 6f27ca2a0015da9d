"""Run under mpiexec: the raw mpi4py measurements, then the same workloads on
pybsp's MPI backend, in one job.  Rank 0 prints the timings as JSON.

Raw MPI comes first because every rank but 0 stops at the first bsp.run call
and only serves rank 0's runs from then on."""

from __future__ import annotations

import json
import sys

import programs
import raw_mpi
from mpi4py import MPI

import bsp


def main(plan: dict) -> None:
    comm = MPI.COMM_WORLD
    results = {}
    for name, size, args in plan["raw"]:
        results[f"{name}|{size}"] = getattr(raw_mpi, name)(comm, *args)
    for name, size, args in plan["bsp"]:
        results[f"{name}|{size}"] = bsp.run(getattr(programs, name), *args, backend="mpi")[0]
    if comm.Get_rank() == 0:
        print(json.dumps(results))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
