"""Run under mpiexec: the raw mpi4py measurements, then the same workloads on
pybsp's MPI backend, then (if asked) the BSP machine parameters, in one job.
Rank 0 prints the timings as JSON: raw ones under "raw|key", pybsp's under
"mpi|key", the machine parameters under "machine".

Raw MPI comes first because every rank but 0 stops at the first bsp.run call
and only serves rank 0's runs from then on."""

from __future__ import annotations

import json
import sys

import programs
import raw_mpi
from mpi4py import MPI

import bsp
from bsp import machine


def main(plan: dict) -> None:
    comm = MPI.COMM_WORLD
    results = {}
    for key, function, args in plan.get("raw", []):
        results[f"raw|{key}"] = getattr(raw_mpi, function)(comm, *args)
    for key, function, args in plan.get("bsp", []):
        results[f"mpi|{key}"] = bsp.run(getattr(programs, function), *args, backend="mpi")[0]
    for key, function, args in plan.get("launcher", []):
        results[f"mpi|{key}"] = [getattr(programs, function)(*args, backend="mpi")]
    if "machine" in plan:
        sizes, repetitions = plan["machine"]
        found = machine.measure(backend="mpi", sizes=tuple(sizes), repetitions=repetitions)
        results["machine"] = {"l": found.l, "g": found.g}
    if comm.Get_rank() == 0:
        print(json.dumps(results))


if __name__ == "__main__":
    main(json.loads(sys.argv[1]))
