"""Fault injection: random BSP runs in which one rank misbehaves, checked for
the documented error, raised in the launching process within a bound and
naming the rank, and for nothing left behind.

    .venv/bin/python scripts/fault_injection.py --backend fork --trials 50
    .venv/bin/python scripts/fault_injection.py --backend mpi --trials 50

Each trial picks nprocs (2 to 8), a rank and a superstep at random, and
injects one fault there:

    raise       the rank raises                          RemoteError naming it
    kill        the rank is killed with SIGKILL          fork: RankDiedError; MPI: the job ends
    exit        the rank calls os._exit(3)               fork: RankDiedError; MPI: the job ends
    return      the rank returns while the others sync   SyncMismatchError naming its call
    collective  the rank calls allreduce, the others sync   SyncMismatchError
    object      the rank creates a queue the others do not  SyncMismatchError
    loop        the rank never reaches the next sync     SyncTimeoutError naming it

On the fork backend a trial runs in this process; on MPI, as a job of its
own under `bsp run --mpi`, which must exit non-zero, promptly, with the
error and the rank on stderr.  After every trial: no new process, no new
/dev/shm entry, no new temp file (of this run's own: see tests/leftovers.py).
"""

from __future__ import annotations

import argparse
import os
import random
import re
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

import leftovers  # noqa: E402

import bsp  # noqa: E402

KINDS = ("raise", "kill", "exit", "return", "collective", "object", "loop")
SUPERSTEPS = 4
SYNC_TIMEOUT = 2.0
BOUND_SECONDS = {"fork": 15.0, "mpi": 30.0}    # from the fault to the error, start-up included


def faulty(world: bsp.World, kind: str, rank: int, superstep: int) -> int:
    """A few supersteps of traffic; `rank` misbehaves in `superstep`."""
    total = 0
    for step in range(SUPERSTEPS):
        world.send((world.pid, step), (world.pid + 1) % world.nprocs)
        if world.pid == rank and step == superstep:
            if kind == "raise":
                raise RuntimeError(f"injected fault on rank {rank}")
            if kind == "kill":
                os.kill(os.getpid(), signal.SIGKILL)
            if kind == "exit":
                os._exit(3)
            if kind == "return":
                return total
            if kind == "collective":
                world.allreduce(1)
            if kind == "object":
                world.queue()
            if kind == "loop":
                while True:
                    pass
        world.sync()
        total += sum(value for _, (_, value) in world.messages())
    return total


@dataclass
class Trial:
    kind: str
    nprocs: int
    rank: int
    superstep: int
    held: bool = False
    seconds: float = 0.0
    detail: str = ""


# What each fault must end in: the error's name and how it names the rank.
EXPECTED = {
    "raise": ("RemoteError", r"rank {rank} raised RuntimeError: injected fault on rank {rank}"),
    "kill": ("RankDiedError", r"rank {rank} died: killed by signal 9 \(SIGKILL\)"),
    "exit": ("RankDiedError", r"rank {rank} died: exited with status 3"),
    "return": ("SyncMismatchError", r"rank {rank}: returned from the program"),
    "collective": ("SyncMismatchError", r"rank {rank}: allreduce at "),
    "object": ("SyncMismatchError", r"rank {rank}: sync at .*having created 1 data objects \(queue\)"),
    "loop": ("SyncTimeoutError", r"ranks \[{rank}\] did not reach the sync of superstep {superstep}"),
}
# Under MPI the launcher ends the job when a process dies.
_FIRST_TO_END = r"the first of its processes to end: [^\n]*\brank {rank} \(pid \d+\)"
EXPECTED_MPI = dict(EXPECTED, kill=("job ended", _FIRST_TO_END), exit=("job ended", _FIRST_TO_END))


def run_trial(trial: Trial, backend: str) -> Trial:
    before = leftovers.snapshot()
    start = time.monotonic()
    if backend == "fork":
        error, text = _fork_trial(trial)
    else:
        error, text = _mpi_trial(trial)
    trial.seconds = time.monotonic() - start
    name, pattern = (EXPECTED if backend == "fork" else EXPECTED_MPI)[trial.kind]
    pattern = pattern.format(rank=trial.rank, superstep=trial.superstep)
    left = leftovers.new_since(before)
    problems = []
    if error != name:
        problems.append(f"ended in {error}, not {name}")
    if not re.search(pattern, text):
        problems.append(f"the message does not say /{pattern}/")
    if trial.seconds > BOUND_SECONDS[backend]:
        problems.append(f"took {trial.seconds:.1f} s")
    if left:
        problems.append(f"left behind {left}")
    trial.held = not problems
    trial.detail = "; ".join(problems) or text.strip().splitlines()[0][:120]
    return trial


def _fork_trial(trial: Trial) -> tuple[str, str]:
    try:
        bsp.run(faulty, trial.kind, trial.rank, trial.superstep, nprocs=trial.nprocs, backend="fork",
                sync_timeout=SYNC_TIMEOUT)
    except bsp.BSPError as error:
        return type(error).__name__, str(error)
    return "no error", ""


def _mpi_trial(trial: Trial) -> tuple[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    command = [str(Path(sys.executable).parent / "bsp"), "run", "--mpi", "-n", str(trial.nprocs), __file__,
               "--one", trial.kind, str(trial.rank), str(trial.superstep)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    if done.returncode == 0:
        return "no error", done.stdout + done.stderr
    for name in ("RemoteError", "SyncMismatchError", "SyncTimeoutError"):
        if f"{name}:" in done.stderr:
            return name, done.stderr
    return "job ended", done.stderr


def plan(trials_per_kind: int, kinds: list[str], seed: int) -> list[Trial]:
    chooser = random.Random(seed)
    trials = []
    for kind in kinds:
        for _ in range(trials_per_kind):
            nprocs = chooser.randint(2, 8)
            # a "return" in the last superstep would be a legal end: keep it before
            superstep = chooser.randrange(SUPERSTEPS - 1 if kind == "return" else SUPERSTEPS)
            trials.append(Trial(kind, nprocs, chooser.randrange(nprocs), superstep))
    return trials


def summary(trials: list[Trial], backend: str) -> str:
    lines = [f"fault injection on the {backend} backend",
             "| fault | trials | held | worst time to error (s) |", "|---|---|---|---|"]
    for kind in KINDS:
        mine = [trial for trial in trials if trial.kind == kind]
        if mine:
            lines.append(f"| {kind} | {len(mine)} | {sum(t.held for t in mine)} | "
                         f"{max(t.seconds for t in mine):.2f} |")
    failed = [trial for trial in trials if not trial.held]
    lines += [f"FAILED: {t.kind} nprocs={t.nprocs} rank={t.rank} superstep={t.superstep}: {t.detail}"
              for t in failed]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", choices=("fork", "mpi"), default="fork")
    parser.add_argument("--trials", type=int, default=50, help="trials per fault kind")
    parser.add_argument("--kinds", default=",".join(KINDS))
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--one", nargs=3, metavar=("KIND", "RANK", "SUPERSTEP"),
                        help="(internal) one faulty run, under the launcher")
    options = parser.parse_args()
    if options.one:
        kind, rank, superstep = options.one
        bsp.run(faulty, kind, int(rank), int(superstep), sync_timeout=SYNC_TIMEOUT)
        return 0
    leftovers.use_private_tempdir()
    trials = [run_trial(trial, options.backend)
              for trial in plan(options.trials, options.kinds.split(","), options.seed)]
    print(summary(trials, options.backend))
    return 0 if all(trial.held for trial in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
