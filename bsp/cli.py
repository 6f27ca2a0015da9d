"""The `bsp` command (also `python -m bsp`)."""

from __future__ import annotations

import argparse
import os
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
    run = commands.add_parser("run", help="run a script whose bsp.run calls use N ranks",
                              description="Run a Python script so that its bsp.run(...) calls use N ranks "
                                          "(unless a call names nprocs itself) on the fork backend.")
    run.add_argument("-n", "--nprocs", type=_positive_int, default=None,
                     help="number of ranks (default: the number of usable cores)")
    run.add_argument("script", help="the Python script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")
    return parser


def main(argv: list[str] | None = None) -> int:
    options = _parser().parse_args(argv)
    return _run_script(options)


def _run_script(options: argparse.Namespace) -> int:
    if not os.path.isfile(options.script):
        print(f"bsp run: no such script: {options.script}", file=sys.stderr)
        return 2
    env = dict(os.environ, BSP_BACKEND="fork")
    if options.nprocs is not None:
        env["BSP_NPROCS"] = str(options.nprocs)
    command = [sys.executable, options.script, *options.args]
    sys.stdout.flush()
    os.execve(sys.executable, command, env)
    return 0   # not reached
