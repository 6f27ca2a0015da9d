"""Kill a checkpointed run at random moments and check that it resumes to
the same answer: the campaign behind `scripts/checkpoint_kills`.

Each trial runs examples/stencil_checkpoint.py with `bsp run -n P
--checkpoint DIR`, kills a random rank or the launching process with
SIGKILL at a random moment (any superstep: a halo exchange, a save while
ranks write their parts, rank 0's commit), then runs the same command
again, on a random number of ranks, and compares what it prints with what
an uninterrupted run printed.  A trial whose directory holds a checkpoint
that was begun but not committed caught a save in the act.

    python scripts/checkpoint_kills.py [--trials 50] [--seed S] [--mpi]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = ROOT / "examples" / "stencil_checkpoint.py"
ARGS = ["200", "300", "10"]         # n, steps, a checkpoint every 10 steps: 30 saves in a run


def command(nprocs: int, directory: Path, mpi: bool, args: list[str] = ARGS) -> list[str]:
    return [sys.executable, "-m", "bsp", "run", *(["--mpi"] if mpi else []), "-n", str(nprocs),
            "--checkpoint", str(directory), str(EXAMPLE), *args]


def environment() -> dict[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    env["BSP_PROGRESS"] = "0"
    return env


def uninterrupted(directory: Path, mpi: bool, args: list[str] = ARGS) -> tuple[str, float]:
    """What a run that nobody kills prints, and how long it takes."""
    start = time.monotonic()
    done = subprocess.run(command(2, directory, mpi, args), capture_output=True, text=True, env=environment(),
                          timeout=600)
    if done.returncode != 0:
        raise SystemExit(f"the uninterrupted run failed:\n{done.stdout}{done.stderr}")
    shutil.rmtree(directory)
    return done.stdout, time.monotonic() - start


def uncommitted(directory: Path) -> bool:
    """Whether the directory holds a checkpoint begun but not committed."""
    latest = directory / "LATEST"
    committed = json.loads(latest.read_text())["checkpoint"] if latest.exists() else None
    return any(entry.name.startswith("ck-") and entry.name != committed for entry in directory.iterdir())


def committed(directory: Path) -> int:
    """How many saves the run has committed (its LATEST names its n-th)."""
    try:
        return int(json.loads((directory / "LATEST").read_text())["checkpoint"].rsplit("-", 1)[1])
    except (FileNotFoundError, ValueError, KeyError):
        return 0


def wait_for_commit(directory: Path, count: int, process: subprocess.Popen) -> float:
    """Wait until the run has committed `count` saves (or ended); return the
    time between its last two commits seen (a save period), or 0.05 s."""
    seen, changes = committed(directory), [time.monotonic()]
    while seen < count and process.poll() is None:
        time.sleep(0.002)
        now = committed(directory)
        if now != seen:
            seen = now
            changes.append(time.monotonic())
    return changes[-1] - changes[-2] if len(changes) > 1 else 0.05


def kill_somewhere(process: subprocess.Popen, delay: float, rng: random.Random) -> str:
    """SIGKILL a random rank, or the launcher, after `delay` seconds; what
    was killed ('rank', 'launcher', or 'nothing' if the run was over).  The
    launcher: the process that forked the ranks, or under MPI mpiexec (the
    `bsp run --mpi` process above it only waits for it)."""
    time.sleep(delay)
    try:
        children = psutil.Process(process.pid).children(recursive=True)
        ranks = [child for child in children if "python" in child.name().lower()]
        mpiexec = [child for child in children if "mpiexec" in child.name().lower()]
        launcher = mpiexec[0] if mpiexec else psutil.Process(process.pid)
    except psutil.NoSuchProcess:
        return "nothing"
    kind, victim = ("launcher", launcher) if rng.random() < 0.3 or not ranks else ("rank", rng.choice(ranks))
    try:
        victim.send_signal(signal.SIGKILL)
    except psutil.NoSuchProcess:
        return "nothing"
    return kind


def trial(number: int, rng: random.Random, base: Path, expected: str, mpi: bool, args: list[str] = ARGS) -> dict:
    """One run killed at random, then resumed; what happened."""
    directory = base / f"trial-{number}"
    first, second = rng.randint(1, 4), rng.randint(1, 5)
    process = subprocess.Popen(command(first, directory, mpi, args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env=environment(), start_new_session=True)
    # A random superstep: after a random number of commits, a random part of a save period.
    target = rng.randint(0, int(args[1]) // int(args[2]) - 1)
    period = wait_for_commit(directory, target, process)
    killed = kill_somewhere(process, rng.uniform(0, 1.5 * period), rng)
    process.communicate(timeout=600)
    _end_group(process.pid)
    caught_saving = directory.exists() and uncommitted(directory)
    done = subprocess.run(command(second, directory, mpi, args), capture_output=True, text=True,
                          env=environment(), timeout=600)
    resumed = next((line for line in done.stderr.splitlines() if line.startswith("resuming at step")), "fresh start")
    return {"trial": number, "first": first, "second": second, "killed": killed, "after": target,
            "during save": caught_saving,
            "resumed": resumed, "same": done.returncode == 0 and done.stdout == expected,
            "output": "" if done.stdout == expected else done.stdout + done.stderr}


def _end_group(pid: int) -> None:
    """Ranks of a killed launcher die with it (fork) or are ended by its
    group; make sure none is left before the next run."""
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=50)
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--mpi", action="store_true", help="run the ranks under mpiexec (bsp run --mpi)")
    options = parser.parse_args()
    seed = options.seed if options.seed is not None else random.randrange(1 << 30)
    rng = random.Random(seed)
    base = Path(tempfile.mkdtemp(prefix="pybsp-checkpoint-kills-"))
    try:
        expected, duration = uninterrupted(base / "reference", options.mpi)
        print(f"seed {seed}; an uninterrupted run takes {duration:.1f} s and prints:\n{expected}", flush=True)
        results = []
        for number in range(options.trials):
            result = trial(number, rng, base, expected, options.mpi)
            results.append(result)
            during = "(during a save) " if result["during save"] else ""
            print(f"trial {number:3}: -n {result['first']} killed {result['killed']:8} after save {result['after']:2} "
                  f"{during}then -n {result['second']}: {result['resumed']}: "
                  f"{'same' if result['same'] else 'DIFFERENT'}{result['output']}", flush=True)
    finally:
        shutil.rmtree(base, ignore_errors=True)
    return report(results)


def report(results: list[dict]) -> int:
    different = [r["trial"] for r in results if not r["same"]]
    kinds = {kind: sum(r["killed"] == kind for r in results) for kind in ("rank", "launcher", "nothing")}
    print(f"{len(results)} trials: killed a rank {kinds['rank']} times, the launcher {kinds['launcher']} times "
          f"({kinds['nothing']} runs ended before the kill); {sum(r['during save'] for r in results)} kills "
          f"caught a save in the act (a checkpoint directory besides the committed one was left: begun, or "
          f"committed but its predecessor not yet removed); "
          f"{sum(r['resumed'] != 'fresh start' for r in results)} resumed from a checkpoint; resumed result equal to the uninterrupted one: {len(results) - len(different)}/{len(results)}")
    if different:
        print(f"DIFFERENT in trials {different}")
    return 1 if different else 0


if __name__ == "__main__":
    sys.exit(main())
