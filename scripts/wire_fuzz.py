"""The wire fuzz campaign at volume: random payload sequences (object graphs
with shared references and cycles, repeated keys, numpy arrays of every
dtype and layout, dill-only objects, `__reduce__` objects; tests/payloads.py)
over every channel of real runs (world.send, queues, Var puts and get
replies, Coarray headers and data, every collective, bsp.run's arguments and
results; tests/channels.py), each checked where it arrives against its own
pickle round trip, identity structure included (tests/structure.py).

    PYTHONPATH=tests .venv/bin/python scripts/wire_fuzz.py --count 100000
    PYTHONPATH=tests .venv/bin/mpiexec -n 4 .venv/bin/python scripts/wire_fuzz.py --count 100000

(scripts/wire_fuzz runs both.)  Runs of 1 to 4 ranks (at most the MPI
job's size), hypothesis drawing each run; it stops after `--count` payload
sequences (see channels.count_sequences), or after `--max-seconds`, and
prints one summary line.  A failure is shrunk by hypothesis, printed, and
ends the campaign with status 1.
"""

from __future__ import annotations

import argparse
import sys
import time

from hypothesis import HealthCheck, Phase, given, settings

import bsp
from bsp.launch.mpi_environment import launched_by_mpi
from channels import count_sequences, plans, run_plan

RUNS_PER_BATCH = 200


def _started(world):
    return world.pid


def _runs_for(tally: dict, count: int) -> int:
    """Runs for the next batch: enough for the sequences still to do, at
    the rate so far, within 20..RUNS_PER_BATCH."""
    if not tally["runs"]:
        return 20
    rate = tally["sequences"] / tally["runs"]
    return max(20, min(RUNS_PER_BATCH, int((count - tally["sequences"]) / rate) + 1))


def _batch(tally: dict, runs: int, steps: int):
    """A hypothesis test of `runs` random runs of up to `steps` supersteps,
    each counted into `tally`."""
    @settings(max_examples=runs, deadline=None, database=None, print_blob=True,
              suppress_health_check=list(HealthCheck), phases=(Phase.generate, Phase.shrink))
    @given(plans(max_steps=steps, max_sends=10))
    def batch(plan):
        run_plan(plan)
        sequences, payloads = count_sequences(plan)
        tally["runs"] += 1
        tally["sequences"] += sequences
        tally["payloads"] += payloads
        tally["nprocs"].add(plan.nprocs)
    return batch


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=100_000, help="payload sequences to try")
    parser.add_argument("--max-seconds", type=float, default=None, help="stop after this long, whatever the count")
    parser.add_argument("--steps", type=int, default=10,
                        help="most supersteps per run (more: fewer runs, whose start costs most on fork)")
    options = parser.parse_args(argv)
    backend = "mpi" if launched_by_mpi() else "fork"
    bsp.run(_started, nprocs=1)         # under MPI, ranks other than 0 serve rank 0's runs from here on
    tally = {"runs": 0, "sequences": 0, "payloads": 0, "nprocs": set()}
    start = time.perf_counter()
    status, verdict = 0, "no failures"
    while tally["sequences"] < options.count:
        if options.max_seconds is not None and time.perf_counter() - start > options.max_seconds:
            verdict = f"no failures; stopped by --max-seconds before {options.count}"
            break
        try:
            _batch(tally, _runs_for(tally, options.count), options.steps)()
        except Exception as error:      # hypothesis has printed the shrunk example
            status, verdict = 1, f"FAILED: {type(error).__name__}: {str(error).splitlines()[0]}"
            break
        print(f"wire_fuzz {backend}: {tally['sequences']} payload sequences so far "
              f"({time.perf_counter() - start:.0f} s)", file=sys.stderr, flush=True)
    elapsed = time.perf_counter() - start
    ranks = sorted(tally["nprocs"])
    print(f"wire_fuzz {backend}: {tally['sequences']} payload sequences ({tally['payloads']} payloads, "
          f"{tally['runs']} runs of {ranks[0] if ranks else 0} to {ranks[-1] if ranks else 0} ranks) "
          f"in {elapsed:.0f} s: {verdict}", flush=True)
    return status


if __name__ == "__main__":
    sys.exit(main())
