"""Fault injection: random BSP runs in which one rank misbehaves, checked for
the documented error, raised in the launching process within a bound and
naming the rank, and for nothing left behind.

    .venv/bin/python tests/fault_injection.py --backend fork --trials 50
    .venv/bin/python tests/fault_injection.py --backend mpi --trials 50

Each trial picks nprocs (2 to 8), a rank and a superstep at random, and
injects one fault there:

    raise       the rank raises                          RemoteError naming it
    kill        the rank is killed with SIGKILL          fork: RankDiedError; MPI: the job ends
    exit        the rank calls os._exit(3)               fork: RankDiedError; MPI: the job ends
    return      the rank returns while the others sync   SyncMismatchError naming its call
    collective  the rank calls allreduce, the others sync   SyncMismatchError
    object      the rank creates a queue the others do not  SyncMismatchError
    loop        the rank never reaches the next sync     SyncTimeoutError naming it
    interrupt   the rank raises KeyboardInterrupt        RemoteError naming it and KeyboardInterrupt
    child       the rank starts `sleep`, then raises     RemoteError; the sleep ended with the run
    orphan      the rank starts `sleep`, then is killed  fork: RankDiedError; MPI: the job ends;
                                                         the sleep ends with the rank
    unloadable  the rank returns what the launching process cannot rebuild
                                                         BSPError naming the rank and the type
    suspend     (fork) every rank is stopped for longer than the sync timeout, then resumed
                                                         no error: time stopped does not count
    launcher    (fork) the launching process is killed (SIGKILL) while it forks 8 to 48 ranks
                                                         every rank ends, nothing is left
    stopped     (fork) the rank stops itself (SIGSTOP)   SyncTimeoutError naming it, stopped
    daemon      the rank starts a daemon (fork, setsid, fork), then raises
                                                         RemoteError; the daemon ended with the run
    huge        the rank raises with a 200 MB message   RemoteError naming it, the message truncated
    fulldisk    the run is recorded; the rank's disk fills (its writes fail with ENOSPC)
                                                         RemoteError naming ENOSPC and the part's path

On the fork backend a trial runs in this process (a launcher trial in a
process of its own); on MPI, as a job of its own under `bsp run --mpi`,
which must exit non-zero, promptly, with the error and the rank on stderr.
After every trial: no new process (the `sleep`s of child and orphan
included, wherever they were reparented), no new /dev/shm entry, no new temp
file (of this run's own: see tests/leftovers.py).
"""

from __future__ import annotations

import argparse
import errno
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import leftovers      # beside this file: tests/ is on sys.path, run as a script or under pytest
import psutil

import bsp
from bsp.launch.rank_runner import running_a_rank

KINDS = ("raise", "kill", "exit", "return", "collective", "object", "loop",
         "interrupt", "child", "orphan", "unloadable", "suspend", "launcher", "stopped", "daemon", "huge",
         "fulldisk")
FORK_ONLY = ("suspend", "launcher", "stopped")
HUGE_MESSAGE = 200_000_000
_MARKER = "PYBSP_FAULT_MARKER"        # in the environment of what a trial starts, to find it again
_LAUNCHER_RANKS = (8, 16, 48)
SUPERSTEPS = 4
SYNC_TIMEOUT = 2.0
# A suspension trial waits longer: what it checks is that the time stopped does
# not count, and on a loaded machine the ranks' resumption alone can take a
# good part of the usual timeout.
SUSPENSION_SYNC_TIMEOUT = 2 * SYNC_TIMEOUT
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
            _misbehave(kind, rank, world)
        world.sync()
        total += sum(value for _, (_, value) in world.messages())
    return Unrebuildable() if kind == "unloadable" and world.pid == rank else total


def _misbehave(kind: str, rank: int, world: bsp.World) -> None:
    if kind == "fulldisk":
        world.engine.transport._writer._file = FullDisk()       # the write of this superstep's arrivals fails
    if kind == "interrupt":
        raise KeyboardInterrupt()
    if kind == "stopped":
        os.kill(os.getpid(), signal.SIGSTOP)
    if kind == "daemon":
        start_daemon(os.environ[_MARKER] + ".daemon")
        raise RuntimeError(f"injected fault on rank {rank}")
    if kind == "huge":
        raise RuntimeError("x" * HUGE_MESSAGE)
    if kind in ("child", "orphan"):
        subprocess.Popen(["sleep", "100"])      # carries the trial's marker in its environment
        if kind == "orphan":
            os.kill(os.getpid(), signal.SIGKILL)
        raise RuntimeError(f"injected fault on rank {rank}")
    if kind == "suspend":
        Path(os.environ[_MARKER]).touch()       # the trial stops every rank now
        time.sleep(0.5)                         # while the others wait at the sync


DAEMON = """import os, sys, time
if os.fork():
    os._exit(0)
os.setsid()
if os.fork():
    os._exit(0)
with open(sys.argv[1] + ".tmp", "w") as file:
    file.write(str(os.getpid()))
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
time.sleep(100)
"""


def start_daemon(pid_file: str) -> int:
    """Start a daemon that sleeps (fork, setsid, fork: it is orphaned at
    once, in a session of its own, holding this process's standard
    streams) and return its pid, once it has written it to `pid_file`."""
    subprocess.run([sys.executable, "-c", DAEMON, pid_file], check=True)
    while not os.path.exists(pid_file):
        time.sleep(0.01)
    with open(pid_file) as file:
        pid = int(file.read())
    os.unlink(pid_file)
    return pid


class FullDisk:
    """A record part's file on a full disk: every write fails."""

    closed = False

    def write(self, data: object) -> int:
        raise OSError(errno.ENOSPC, "No space left on device")

    def flush(self) -> None:
        pass

    def close(self) -> None:
        self.closed = True


class Unrebuildable:
    """A value that a rank can send but the launching process cannot rebuild."""

    def __reduce__(self) -> tuple[object, tuple[()]]:
        return _rebuild, ()


def _rebuild() -> "Unrebuildable":
    if not running_a_rank():
        raise RuntimeError("this value cannot be rebuilt outside a rank")
    return Unrebuildable()


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
    "interrupt": ("RemoteError", r"rank {rank} raised KeyboardInterrupt"),
    "unloadable": ("BSPError", r"rank {rank} returned a [\w.]*Unrebuildable that cannot be rebuilt"),
    "suspend": ("no error", r""),
    "launcher": ("ranks ended", r""),
    "stopped": ("SyncTimeoutError", r"ranks \[{rank}\] did not reach the sync of superstep {superstep} .*"
                                    r"\(ranks \[{rank}\] are stopped"),
    "huge": ("RemoteError", r"rank {rank} raised RuntimeError: x{{4000,}} \[\.\.\. \d+ more characters: truncated\]"),
    "fulldisk": ("RemoteError", r"rank {rank} could not write its part of the record at \S*rank-{rank}\.part: "
                                r"No space left on device \[ENOSPC\]"),
}
EXPECTED.update(child=EXPECTED["raise"], orphan=EXPECTED["kill"], daemon=EXPECTED["raise"])  # and what they started is gone
# Under MPI the launcher ends the job when a process dies.
_FIRST_TO_END = r"the first of its processes to end: [^\n]*\brank {rank} \(pid \d+[,)]"
EXPECTED_MPI = dict(EXPECTED, kill=("job ended", _FIRST_TO_END), exit=("job ended", _FIRST_TO_END),
                    orphan=("job ended", _FIRST_TO_END))


def run_trial(trial: Trial, backend: str) -> Trial:
    before = leftovers.snapshot()
    semaphores = leftovers.named_semaphores()
    marker = os.environ[_MARKER] = os.path.join(leftovers.use_private_tempdir(), f"fault-{time.monotonic_ns()}")
    start = time.monotonic()
    if trial.kind == "launcher":
        error, text = _launcher_trial(trial, marker)
    elif backend == "fork":
        error, text = _fork_trial(trial, marker)
    else:
        error, text = _mpi_trial(trial)
    trial.seconds = time.monotonic() - start
    left_running = _marked(marker)
    del os.environ[_MARKER]
    if os.path.exists(marker):
        os.unlink(marker)
    name, pattern = (EXPECTED if backend == "fork" else EXPECTED_MPI)[trial.kind]
    pattern = pattern.format(rank=trial.rank, superstep=trial.superstep)
    left = leftovers.new_since(before)
    if left_running:
        left["processes started by the trial"] = left_running
    left_semaphores = leftovers.semaphores_left_since(semaphores)
    if left_semaphores:
        left["semaphores"] = left_semaphores
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
    trial.detail = "; ".join(problems) or (text.strip().splitlines() or ["as expected"])[0][:120]
    return trial


def _fork_trial(trial: Trial, marker: str) -> tuple[str, str]:
    stopper = None
    if trial.kind == "suspend":
        stopper = threading.Thread(target=_stop_every_rank, args=(marker, 1.5 * SUSPENSION_SYNC_TIMEOUT,
                                                                  trial.nprocs))
        stopper.start()
    try:
        bsp.run(faulty, trial.kind, trial.rank, trial.superstep, nprocs=trial.nprocs, backend="fork",
                sync_timeout=SUSPENSION_SYNC_TIMEOUT if trial.kind == "suspend" else SYNC_TIMEOUT,
                record=recorded(trial.kind, marker))
    except Exception as error:          # a raw exception, not pybsp's error, is a failed trial
        return type(error).__name__, str(error)
    finally:
        if stopper is not None:
            Path(marker).touch()        # should the rank never have got there
            Path(marker + ".done").touch()
            stopper.join()
            os.unlink(marker + ".done")
        _remove(recorded(trial.kind, marker))
    return "no error", ""


def recorded(kind: str, marker: str) -> str | None:
    """Where a trial of `kind` records its run (None: it does not)."""
    return marker + ".bsprec" if kind == "fulldisk" else None


def _remove(path: str | None) -> None:
    if path is not None and os.path.exists(path):
        os.unlink(path)


def _stop_every_rank(marker: str, seconds: float, nprocs: int) -> None:
    """Once the faulty rank says so, stop every rank for `seconds` (as
    Ctrl-Z would), then resume them.  On a busy machine the faulty rank
    may say so before the last ranks are forked: the stop waits for them
    (stopping only some would be a stop of those ranks alone, a fault of
    another kind)."""
    while not os.path.exists(marker):
        time.sleep(0.01)
    ranks = _ranks_of_this_process()
    while len(ranks) < nprocs and not os.path.exists(marker + ".done"):
        time.sleep(0.01)
        ranks = _ranks_of_this_process()
    for rank in ranks:
        _signal(rank, signal.SIGSTOP)
    time.sleep(seconds)         # the length of the suspension is the fault injected
    for rank in ranks:
        _signal(rank, signal.SIGCONT)


def _ranks_of_this_process() -> list[int]:
    try:
        return [child.pid for child in psutil.Process().children()]
    except psutil.Error:
        return []


def _signal(pid: int, sig: int) -> None:
    try:
        os.kill(pid, sig)
    except ProcessLookupError:
        pass


_LAUNCHER = """import bsp, time
def forever(world):
    while True:
        world.sync()
        time.sleep(0.01)
bsp.run(forever, nprocs={nprocs}, backend="fork", sync_timeout=0)
"""


def _launcher_trial(trial: Trial, marker: str) -> tuple[str, str]:
    """Kill a launching process while it forks its ranks (a moment drawn
    from the trial's rank and superstep), then wait for every rank to end."""
    nprocs = _LAUNCHER_RANKS[trial.rank % len(_LAUNCHER_RANKS)]
    launching = subprocess.Popen([sys.executable, "-c", _LAUNCHER.format(nprocs=nprocs)])
    time.sleep(0.05 * (trial.superstep + trial.rank % 3))     # the moment of the fault
    launching.kill()
    launching.wait()
    deadline = time.monotonic() + BOUND_SECONDS["fork"]
    while _marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    alive = _marked(marker)
    if alive:
        return "ranks left", f"{len(alive)} of {nprocs} ranks still run"
    return "ranks ended", f"{nprocs} ranks"


def _marked(marker: str) -> list[int]:
    """Processes that run with this trial's marker in their environment."""
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get(_MARKER) == marker:
                found.append(process.pid)
        except psutil.Error:        # gone meanwhile, or not ours to read
            continue
    return found


def _mpi_trial(trial: Trial) -> tuple[str, str]:
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    command = [str(Path(sys.executable).parent / "bsp"), "run", "--mpi", "-n", str(trial.nprocs), __file__,
               "--one", trial.kind, str(trial.rank), str(trial.superstep)]
    try:
        done = subprocess.run(command, capture_output=True, text=True, env=env, timeout=60)
    except subprocess.TimeoutExpired:
        return "hang", "the job did not end within 60 s"
    finally:
        _remove(recorded(trial.kind, os.environ[_MARKER]))
    if done.returncode == 0:
        return "no error", done.stdout + done.stderr
    for name in ("RemoteError", "SyncMismatchError", "SyncTimeoutError", "BSPError"):
        if f"{name}:" in done.stderr:
            return name, done.stderr
    return "job ended", done.stderr


def plan(trials_per_kind: int, kinds: list[str], seed: int) -> list[Trial]:
    chooser = random.Random(seed)
    trials = []
    for kind in kinds:
        for _ in range(trials_per_kind):
            if kind == "launcher":
                trials.append(Trial(kind, 1, chooser.randrange(len(_LAUNCHER_RANKS) * 3), chooser.randrange(4)))
                continue
            nprocs = chooser.randint(2, 8)
            # a "return" in the last superstep would be a legal end: keep it before
            superstep = chooser.randrange(SUPERSTEPS - 1 if kind == "return" else SUPERSTEPS)
            trials.append(Trial(kind, nprocs, chooser.randrange(nprocs), superstep))
    return trials


def interleaved(trials: list[Trial]) -> list[Trial]:
    """The trials, one of each kind in turn: a campaign cut short has tried every kind alike."""
    by_kind: dict[str, list[Trial]] = {}
    for trial in trials:
        by_kind.setdefault(trial.kind, []).append(trial)
    rounds = max((len(mine) for mine in by_kind.values()), default=0)
    return [mine[i] for i in range(rounds) for mine in by_kind.values() if i < len(mine)]


def kinds_for(backend: str) -> list[str]:
    """The kinds of fault that apply on `backend`."""
    return [kind for kind in KINDS if backend == "fork" or kind not in FORK_ONLY]


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
    parser.add_argument("--kinds", help="comma-separated (default: every kind the backend has)")
    parser.add_argument("--seed", type=int, default=2026)
    parser.add_argument("--one", nargs=3, metavar=("KIND", "RANK", "SUPERSTEP"),
                        help="(internal) one faulty run, under the launcher")
    options = parser.parse_args()
    if options.one:
        kind, rank, superstep = options.one
        bsp.run(faulty, kind, int(rank), int(superstep), sync_timeout=SYNC_TIMEOUT,
                record=recorded(kind, os.environ[_MARKER]))
        return 0
    leftovers.use_private_tempdir()
    kinds = options.kinds.split(",") if options.kinds else kinds_for(options.backend)
    trials = []
    for trial in interleaved(plan(options.trials, kinds, options.seed)):
        trials.append(run_trial(trial, options.backend))
        print(f"{trial.kind} nprocs={trial.nprocs} rank={trial.rank}: {'held' if trial.held else 'FAILED'} "
              f"in {trial.seconds:.2f} s", file=sys.stderr, flush=True)
    print(summary(trials, options.backend))
    return 0 if all(trial.held for trial in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
