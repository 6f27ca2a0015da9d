"""Hangs, orphans and leaks that probing found (issue 16), on the fork
backend in this process, and under MPI as jobs of their own: what a rank
starts ends with it, a rank dies with the launching process, surviving
ranks clean up, KeyboardInterrupt in a program is that rank's failure,
concurrent runs, resource limits, SIGCHLD ignored, a suspended job, and
return values that cannot be rebuilt."""

import os
import resource
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import psutil
import pytest

import bsp
from bsp.fork import launcher

import fault_injection as faults
import leftovers

pytestmark = pytest.mark.mpi_skip
BIN = Path(sys.executable).parent
MPIEXEC = BIN / "mpiexec"
needs_mpi = pytest.mark.skipif(not MPIEXEC.exists(), reason="no mpiexec beside this Python")


def running(pid):
    """Whether `pid` runs (zombies and vanished processes do not)."""
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def still_running(pids, seconds=30):
    """Those of `pids` that still run after `seconds`, or as soon as none
    does (a SIGKILL sent is not yet a process ended)."""
    deadline = time.monotonic() + seconds
    while any(map(running, pids)) and time.monotonic() < deadline:
        time.sleep(0.01)
    return [pid for pid in pids if running(pid)]


def leave_children(world):
    """Rank 1 leaves a forked child and a daemonic multiprocessing child running."""
    import multiprocessing
    pids = []
    if world.pid == 1:
        child = os.fork()
        if child == 0:
            time.sleep(100)
            os._exit(0)
        daemon = multiprocessing.get_context("fork").Process(target=time.sleep, args=(100,), daemon=True)
        daemon.start()
        pids = [child, daemon.pid]
    world.sync()
    return pids


def test_what_a_rank_leaves_running_neither_holds_the_run_nor_outlives_it():
    results = bsp.run(leave_children, nprocs=2, backend="fork")
    assert len(results[1]) == 2
    assert not still_running(results[1])


def clean_up_when_stopped(world, folder):
    """Rank 1 dies once rank 0 runs a subprocess inside try/finally."""
    if world.pid == 0:
        sleeper = subprocess.Popen(["sleep", "100"])
        try:
            (folder / "sleeper").write_text(str(sleeper.pid))
            world.sync()
        finally:
            (folder / "cleaned").write_text("finally ran")
    else:
        while not (folder / "sleeper").exists():
            time.sleep(0.01)
        os.kill(os.getpid(), signal.SIGKILL)


def test_surviving_ranks_clean_up_and_what_they_started_ends(tmp_path):
    with pytest.raises(bsp.RankDiedError, match="rank 1 died"):
        bsp.run(clean_up_when_stopped, tmp_path, nprocs=2, backend="fork", sync_timeout=0)
    assert (tmp_path / "cleaned").read_text() == "finally ran"
    assert not still_running([int((tmp_path / "sleeper").read_text())])


LAUNCHER = textwrap.dedent('''
    import bsp, sys, time
    def forever(world):
        while True:
            world.sync()
            time.sleep(0.01)
    bsp.run(forever, nprocs=int(sys.argv[1]), backend="fork", sync_timeout=0)
''')


def marked(marker):
    found = []
    for process in psutil.process_iter():
        try:
            if process.status() != psutil.STATUS_ZOMBIE and process.environ().get("PYBSP_TEST_MARKER") == marker:
                found.append(process.pid)
        except psutil.Error:        # gone meanwhile, or not ours to read
            continue
    return found


@pytest.mark.parametrize("nprocs,moment", [(8, 0.0), (16, 0.1), (48, 0.2)])
def test_every_rank_dies_with_a_launching_process_killed_while_it_forks(tmp_path, nprocs, moment):
    marker = f"{tmp_path}-{nprocs}"
    semaphores = leftovers.named_semaphores()
    env = dict(os.environ, PYBSP_TEST_MARKER=marker)
    launching = subprocess.Popen([sys.executable, "-c", LAUNCHER, str(nprocs)], env=env)
    time.sleep(moment)          # when the launching process dies: the fault injected
    launching.kill()
    launching.wait()
    deadline = time.monotonic() + 60
    while marked(marker) and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not marked(marker)
    assert not leftovers.semaphores_left_since(semaphores)


def interrupted(world, rank):
    if world.pid == rank:
        raise KeyboardInterrupt()
    world.sync()


@pytest.mark.parametrize("rank", [0, 1])
def test_a_keyboard_interrupt_the_program_raises_is_a_remote_error(rank):
    with pytest.raises(bsp.RemoteError, match=f"rank {rank} raised KeyboardInterrupt") as caught:
        bsp.run(interrupted, rank, nprocs=2, backend="fork")
    assert caught.value.rank == rank


def dies_or_waits(world, flag, tell):
    """Run A: rank 1 is killed.  Run B: rank 0 waits until told that A ended."""
    if flag is None:
        if world.pid == 1:
            os.kill(os.getpid(), signal.SIGKILL)
        world.sync()
        return
    if world.pid == 0:
        deadline = time.monotonic() + 60
        while not os.path.exists(flag) and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.path.exists(flag)
    return tell


def test_concurrent_fork_runs_from_two_threads_are_independent(tmp_path):
    flag = tmp_path / "a-ended"
    results = {}
    second = threading.Thread(target=lambda: results.update(b=bsp.run(dies_or_waits, str(flag), "b",
                                                                      nprocs=2, backend="fork")))
    second.start()
    try:
        with pytest.raises(bsp.RankDiedError, match="rank 1 died"):
            bsp.run(dies_or_waits, None, None, nprocs=2, backend="fork")
    finally:
        flag.touch()
        second.join()
    assert results["b"] == [True, "b"]      # run B saw run A end while it ran


def pipes_and_watches():
    """This process's pipes and pidfds (what a fork run opens; the suite's
    own threads open other files meanwhile)."""
    found = set()
    for fd in os.listdir("/proc/self/fd"):
        try:
            if os.readlink(f"/proc/self/fd/{fd}").startswith(("pipe:", "anon_inode:[pidfd]")):
                found.add(fd)
        except OSError:
            continue
    return found


def test_too_few_file_descriptors_is_a_clear_error_and_leaks_none():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    before = pipes_and_watches()
    resource.setrlimit(resource.RLIMIT_NOFILE, (len(os.listdir("/proc/self/fd")) + 40, hard))
    try:
        with pytest.raises(bsp.BSPError, match=r"a fork run of 32 ranks needs \d+ file descriptors.*ulimit -n"):
            bsp.run(lambda world: world.pid, nprocs=32, backend="fork")
    finally:
        resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))
    assert pipes_and_watches() == before


def test_a_refused_fork_is_a_clear_error_and_the_forked_ranks_end(monkeypatch):
    real_fork, forked = os.fork, []

    def fork():
        if len(forked) == 2:
            raise BlockingIOError(11, "Resource temporarily unavailable")
        child = real_fork()
        if child:
            forked.append(child)
        return child

    monkeypatch.setattr(launcher.os, "fork", fork)
    with pytest.raises(bsp.BSPError, match=r"could not make rank 2 of 4: the system refused another process"):
        bsp.run(lambda world: world.sync(), nprocs=4, backend="fork")
    assert not still_running(forked)


def dies_at(world, rank):
    if world.pid == rank:
        os._exit(5)
    world.sync()
    return world.pid


def test_runs_work_when_the_program_ignores_sigchld():
    previous = signal.signal(signal.SIGCHLD, signal.SIG_IGN)
    try:
        assert bsp.run(dies_at, -1, nprocs=3, backend="fork") == [0, 1, 2]
        with pytest.raises(bsp.RankDiedError, match="rank 1 died"):
            bsp.run(dies_at, 1, nprocs=3, backend="fork")
    finally:
        signal.signal(signal.SIGCHLD, previous)


def late_while_stopped(world, flag):
    if world.pid == 1:
        flag.touch()            # the test stops every rank now
        time.sleep(0.5)         # while the others wait at the sync
    world.sync()
    return world.pid


def test_time_the_job_spends_stopped_does_not_count_towards_the_sync_timeout(tmp_path):
    flag = tmp_path / "stop-now"

    def stop_every_rank():
        while not flag.exists():
            time.sleep(0.01)
        ranks = psutil.Process().children()
        for rank in ranks:
            rank.send_signal(signal.SIGSTOP)
        time.sleep(3)           # longer than the sync timeout: the suspension injected
        for rank in ranks:
            rank.send_signal(signal.SIGCONT)

    stopper = threading.Thread(target=stop_every_rank)
    stopper.start()
    try:
        assert bsp.run(late_while_stopped, flag, nprocs=3, backend="fork", sync_timeout=1.5) == [0, 1, 2]
    finally:
        flag.touch()
        stopper.join()


CTRL_Z = textwrap.dedent('''
    import bsp, os, sys, time
    def late(world):
        print("running", flush=True)
        if world.pid == 1:
            time.sleep(1)
        world.sync()
        return world.pid
    print(bsp.run(late, nprocs=2, backend="fork", sync_timeout=1.5), flush=True)
''')


def test_ctrl_z_stops_the_ranks_with_the_launching_process_and_it_does_not_count():
    process = subprocess.Popen([sys.executable, "-c", CTRL_Z], stdout=subprocess.PIPE, text=True)
    try:
        for _ in range(2):
            assert process.stdout.readline() == "running\n"
        ranks = psutil.Process(process.pid).children()
        process.send_signal(signal.SIGTSTP)
        deadline = time.monotonic() + 30
        while not all(_stopped(rank) for rank in ranks) and time.monotonic() < deadline:
            time.sleep(0.01)
        assert all(_stopped(rank) for rank in ranks)
        time.sleep(3)           # stopped for longer than the sync timeout
        process.send_signal(signal.SIGCONT)
        output, _ = process.communicate(timeout=60)
    finally:
        process.kill()
        process.wait()
    assert process.returncode == 0 and output == "[0, 1]\n"


def _stopped(process):
    try:
        return process.status() == psutil.STATUS_STOPPED
    except psutil.NoSuchProcess:
        return False


def test_a_return_value_that_cannot_be_rebuilt_names_the_rank_and_type():
    def program(world):
        return faults.Unrebuildable() if world.pid == 1 else 0
    with pytest.raises(bsp.BSPError, match=r"rank 1 returned a fault_injection\.Unrebuildable that cannot be "
                                           r"rebuilt in the launching process: RuntimeError"):
        bsp.run(program, nprocs=2, backend="fork")


# -- MPI: each test a job of its own ------------------------------------------------

def bsp_run_mpi(tmp_path, source, nprocs=2, timeout=120):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent(source))
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    return subprocess.run([BIN / "bsp", "run", "--mpi", "-n", str(nprocs), script], capture_output=True,
                          text=True, env=env, timeout=timeout)


@needs_mpi
def test_mpi_a_child_a_rank_leaves_neither_holds_the_job_nor_outlives_it(tmp_path):
    done = bsp_run_mpi(tmp_path, '''
        import os, time
        import bsp
        def program(world):
            if world.pid == 1:
                child = os.fork()
                if child == 0:
                    time.sleep(100)
                    os._exit(0)
                return child
        print(bsp.run(program)[1], flush=True)
    ''')
    assert done.returncode == 0, done.stderr
    assert not still_running([int(done.stdout.split()[-1])])


@needs_mpi
@pytest.mark.parametrize("rank", [0, 1])
def test_mpi_a_keyboard_interrupt_the_program_raises_is_a_remote_error(tmp_path, rank):
    done = bsp_run_mpi(tmp_path, f'''
        import bsp
        def program(world):
            if world.pid == {rank}:
                raise KeyboardInterrupt()
            world.sync()
        try:
            bsp.run(program, sync_timeout=0)
        except bsp.RemoteError as error:
            print("caught", error.rank, str(error).splitlines()[0], flush=True)
    ''')
    assert done.returncode == 0, done.stderr
    assert f"caught {rank} rank {rank} raised KeyboardInterrupt" in done.stdout


@needs_mpi
def test_mpi_runs_one_at_a_time_and_says_so(tmp_path):
    done = bsp_run_mpi(tmp_path, f'''
        import os, threading, time
        import bsp
        flag = {str(tmp_path / "started")!r}
        def slow(world):
            if world.pid == 0:
                open(flag, "w").close()
            time.sleep(1)
            world.sync()
        if os.environ.get("PMI_RANK", "0") != "0":
            bsp.run(slow)           # the other ranks serve rank 0's runs from here
        first = threading.Thread(target=bsp.run, args=(slow,))
        first.start()
        while not os.path.exists(flag):
            time.sleep(0.01)
        try:
            bsp.run(slow)
        except bsp.BSPError as error:
            print("refused:", error, flush=True)
        first.join()
    ''')
    assert done.returncode == 0, done.stderr
    assert "refused: another bsp.run of this MPI job is in progress" in done.stdout


@needs_mpi
def test_mpi_what_ranks_print_in_the_last_superstep_comes_before_what_rank_0_prints_after(tmp_path):
    done = bsp_run_mpi(tmp_path, '''
        import bsp
        def program(world, run):
            world.sync()
            print(f"run {run} rank {world.pid}", flush=True)
        for run in range(20):
            bsp.run(program, run)
            print(f"after {run}", flush=True)
    ''', nprocs=3)
    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    for run in range(20):
        for rank in range(3):
            assert lines.index(f"run {run} rank {rank}") < lines.index(f"after {run}")


@needs_mpi
def test_mpi_a_return_value_that_cannot_be_rebuilt_names_the_rank(tmp_path):
    done = bsp_run_mpi(tmp_path, '''
        import bsp
        from bsp.launch.rank_runner import running_a_rank
        class Unrebuildable:
            def __reduce__(self):
                return rebuild, ()
        def rebuild():
            if not running_a_rank():
                raise RuntimeError("cannot be rebuilt outside a rank")
            return Unrebuildable()
        def program(world):
            return Unrebuildable() if world.pid == 1 else 0
        try:
            bsp.run(program)
        except bsp.BSPError as error:
            print("caught:", error, flush=True)
    ''')
    assert done.returncode == 0, done.stderr
    assert "caught: rank 1 returned a __main__.Unrebuildable that cannot be rebuilt" in done.stdout


ADDRESS_SPACE = textwrap.dedent('''
    import resource
    import numpy as np
    import bsp
    big = np.ones(300_000_000, np.uint8)
    with open("/proc/self/status") as status:
        size = next(int(line.split()[1]) for line in status if line.startswith("VmSize:")) * 1024
    resource.setrlimit(resource.RLIMIT_AS, (size + (400 << 20), resource.RLIM_INFINITY))
    def program(world, big):
        if world.pid == 0:
            world.send(big, 1)
        world.sync()
    try:
        bsp.run(program, big, nprocs=2, backend="fork")
    except bsp.RemoteError as error:
        print(str(error).splitlines()[-1])
''')


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_a_heap_limited_by_the_address_space_blames_the_limit_not_the_receivers():
    done = subprocess.run([sys.executable, "-c", ADDRESS_SPACE], capture_output=True, text=True, timeout=120)
    assert "does not fit the fork backend's handover heap" in done.stdout, done.stdout + done.stderr
    assert "ulimit -v" in done.stdout and "receivers still hold" not in done.stdout


@needs_mpi
def test_mpi_time_the_job_spends_stopped_does_not_count_towards_the_sync_timeout(tmp_path):
    script = tmp_path / "job.py"
    script.write_text(textwrap.dedent('''
        import time
        import bsp
        def late(world):
            print("running", world.pid, flush=True)
            if world.pid == 1:
                time.sleep(1)       # rank 0 waits at the sync meanwhile
            world.sync()
            return world.pid
        print(bsp.run(late, sync_timeout=1.5), flush=True)
    '''))
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    job = subprocess.Popen([BIN / "bsp", "run", "--mpi", "-n", "2", script], stdout=subprocess.PIPE, text=True, env=env)
    try:
        assert sorted(job.stdout.readline().split()[-1] for _ in range(2)) == ["0", "1"]
        ranks = [process for process in psutil.Process(job.pid).children(recursive=True)
                 if _cmdline(process)[-1:] == [str(script)]]
        assert len(ranks) >= 2
        for rank in ranks:
            rank.send_signal(signal.SIGSTOP)
        time.sleep(3)           # stopped for twice the sync timeout: the suspension injected
        for rank in ranks:
            rank.send_signal(signal.SIGCONT)
        output, _ = job.communicate(timeout=120)
    finally:
        job.kill()
        job.wait()
    assert job.returncode == 0 and output.splitlines()[-1] == "[0, 1]"


def _cmdline(process):
    try:
        return process.cmdline()
    except psutil.NoSuchProcess:
        return []


# -- issue 27: a rank stopped alone, daemons, a huge exception message ------------

def stops_itself(world):
    world.sync()
    if world.pid == 1:
        os.kill(os.getpid(), signal.SIGSTOP)       # or a debugger, or anyone else
    world.sync()


def test_one_rank_stopped_alone_is_a_sync_timeout_naming_it():
    start = time.monotonic()
    with pytest.raises(bsp.SyncTimeoutError, match=r"ranks \[1\] did not reach the sync of superstep 1 within the "
                                                   r"sync timeout of 2 s \(ranks \[1\] are stopped") as caught:
        bsp.run(stops_itself, nprocs=3, backend="fork", sync_timeout=2)
    assert caught.value.stopped == [1] and time.monotonic() - start < 20


def starts_a_daemon(world, folder):
    """Rank 1 starts a daemon (fork, setsid, fork) that outlives it unless ended."""
    daemon = faults.start_daemon(str(folder / "daemon.pid")) if world.pid == 1 else None
    world.sync()
    return daemon


def test_a_daemon_a_rank_starts_ends_with_the_run(tmp_path):
    daemon = bsp.run(starts_a_daemon, tmp_path, nprocs=2, backend="fork", sync_timeout=0)[1]
    assert not still_running([daemon], seconds=5)


def raises_hugely(world):
    world.sync()
    if world.pid == 1:
        raise ValueError("x" * 200_000_000)
    world.sync()


def test_a_200_mb_exception_message_is_a_remote_error_truncated():
    with pytest.raises(bsp.RemoteError, match=r"rank 1 raised ValueError: x{4000,} \[\.\.\. 199995904 more "
                                              r"characters: truncated\]") as caught:
        bsp.run(raises_hugely, nprocs=4, backend="fork", sync_timeout=2)
    assert len(str(caught.value)) < 100_000


@needs_mpi
def test_mpi_a_daemon_a_rank_starts_neither_holds_the_job_nor_outlives_it(tmp_path):
    done = bsp_run_mpi(tmp_path, f'''
        import sys
        sys.path.insert(0, {str(Path(__file__).parent.parent)!r})
        import bsp
        import fault_injection

        def program(world):
            if world.pid == 1:
                return fault_injection.start_daemon({str(tmp_path / "daemon.pid")!r})
        print(bsp.run(program)[1], flush=True)
    ''', timeout=60)        # without the fix, the job waits for the daemon: 100 s
    assert done.returncode == 0, done.stderr
    assert not still_running([int(done.stdout.split()[-1])], seconds=5)


@needs_mpi
def test_mpi_a_200_mb_exception_message_is_a_remote_error_truncated(tmp_path):
    done = bsp_run_mpi(tmp_path, '''
        import bsp
        def program(world):
            world.sync()
            if world.pid == 1:
                raise ValueError("x" * 200_000_000)
            world.sync()
        try:
            bsp.run(program, sync_timeout=2)
        except bsp.RemoteError as error:
            print("caught", error.rank, len(str(error)) < 100_000, str(error).splitlines()[0][-60:], flush=True)
    ''', nprocs=3)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("caught 1 True ") and "more characters: truncated]" in done.stdout
