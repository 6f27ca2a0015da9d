"""The BSP cost model against the clock, for one example program: measure g
and l (as `bsp bench` does) and then, in the same process, profile several
runs of the example's BSP function; report the medians of the predicted
time T = sum(w_max + g*h_max + l) and of the measured time, and their error.

    .venv/bin/python scripts/benchmarks/prediction.py lu2d lu2d 400 --nprocs 2 --runs 7
    .venv/bin/mpiexec -n 4 .venv/bin/python scripts/benchmarks/prediction.py lu2d lu2d 400 --runs 7

(module in examples/, its BSP function, the function's arguments as Python
literals).  Measures and reports; asserts nothing.
"""

from __future__ import annotations

import argparse
import ast
import importlib
import statistics
import sys
from pathlib import Path

import bsp
from bsp.machine import measure

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "examples"))


def predict(program, args: list, nprocs: int | None, runs: int, backend: str | None = None) -> tuple:
    """Measure g and l, then profile `runs` runs of `program(*args)`:
    (the MachineParameters, the predicted seconds per run, the measured
    seconds per run, the last run's Profile)."""
    machine = measure(nprocs, backend)
    predicted, measured = [], []
    for _ in range(runs):
        profiles: list = []
        bsp.run(program, *args, nprocs=nprocs, backend=backend, profile=profiles.append)
        predicted.append(float(profiles[0].predicted(machine).sum()))
        measured.append(float(profiles[0].measured.sum()))
    return machine, predicted, measured, profiles[0]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("module")
    parser.add_argument("function")
    parser.add_argument("args", nargs="*", type=ast.literal_eval)
    parser.add_argument("--nprocs", type=int, default=None)
    parser.add_argument("--runs", type=int, default=7)
    options = parser.parse_args()
    program = getattr(importlib.import_module(options.module), options.function)
    machine, predicted, measured, profile = predict(program, options.args, options.nprocs, options.runs)
    print(machine.describe())
    for a, b in zip(predicted, measured):
        print(f"  run: predicted {a * 1e3:.1f} ms, measured {b * 1e3:.1f} ms, error {100 * (a - b) / b:+.1f}%")
    p, m = statistics.median(predicted), statistics.median(measured)
    errors = sorted(100 * (a - b) / b for a, b in zip(predicted, measured))
    print(f"{options.module}.{options.function}{tuple(options.args)}, {profile.nprocs} ranks, "
          f"{profile.backend} backend, {profile.supersteps} supersteps: median predicted {p * 1e3:.1f} ms, "
          f"median measured {m * 1e3:.1f} ms, error {100 * (p - m) / m:+.1f}% "
          f"(per run: {errors[0]:+.1f}% to {errors[-1]:+.1f}%, median {statistics.median(errors):+.1f}%)")


if __name__ == "__main__":
    main()
