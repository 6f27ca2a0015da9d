"""The %%bsp cell magic for Jupyter and IPython:

    %load_ext bsp

    %%bsp -n 4 --timeout 60
    total = world.allreduce(world.pid)
    print(f"rank {world.pid} of {world.nprocs}: total {total}")
    total * 10                      # the last expression: each rank's result

The cell body runs as a BSP program on forked ranks, with `world` bound and
the notebook's names visible (as they were when the cell started: what the
cell assigns stays in the ranks).  Every line a rank prints comes out whole,
tagged "[rank N] ".  If the body ends with an expression, the cell's value is
the list of its values on every rank, in pid order.

Errors: a rank that raises shows the RemoteError with that rank's traceback;
a sync mismatch, a dead rank or a cell over its --timeout shows its error in
one line.  The kernel survives all of them, and an interrupt (the ranks are
ended; nothing is left behind).

IPython is imported by nothing here: the magic receives the shell it runs in.
"""

from __future__ import annotations

import argparse
import ast
import shlex
from typing import Any, Callable

from bsp.errors import BSPError, RemoteError
from bsp.launch.bsp_run import run_with_timeout
from bsp.launch.output_relay import tagged

TAG = "[rank {pid}] "


def load_ipython_extension(shell: Any) -> None:
    """`%load_ext bsp`: register the %%bsp cell magic with `shell`, and a
    %bsp line magic that shows its help."""
    shell.register_magic_function(lambda line, cell: run_cell(shell, line, cell), "cell", "bsp")
    shell.register_magic_function(show_help, "line", "bsp")
    cleanup = getattr(shell, "input_transformers_cleanup", None)
    if cleanup is not None and _help_alone not in cleanup:
        cleanup.append(_help_alone)


def show_help(line: str = "") -> None:
    """`%bsp` (or `%%bsp --help`): print the magic's help."""
    print(_parser().format_help().rstrip())


def _help_alone(lines: list[str]) -> list[str]:
    """A cell that is `%%bsp --help` alone, as the line magic: IPython
    refuses a cell magic with an empty body before the magic sees it."""
    first, rest = (lines[0], lines[1:]) if lines else ("", [])
    if first.startswith("%%bsp") and not "".join(rest).strip() and {"-h", "--help"} & set(first.split()):
        return ["%bsp" + first[len("%%bsp"):]]
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="%%bsp", add_help=False, exit_on_error=False,
                                     description="Run the cell as a BSP program on forked ranks, with "
                                                 "`world` bound; its last expression's values on every "
                                                 "rank are the cell's value.")
    parser.add_argument("-h", "--help", action="store_true", help="show this help and run nothing")
    parser.add_argument("-n", "--nprocs", type=int, default=None,
                        help="number of ranks (default: BSP_NPROCS, else the usable cores)")
    parser.add_argument("--timeout", type=float, default=None,
                        help="seconds the cell may run before its ranks are ended (default: none)")
    return parser


def parse_options(line: str) -> argparse.Namespace:
    """The magic's options; raises ValueError saying what is wrong."""
    parser = _parser()
    try:
        options, unknown = parser.parse_known_args(shlex.split(line))
    except (argparse.ArgumentError, ValueError) as error:
        raise ValueError(f"%%bsp: {error}\n{parser.format_usage()}") from None
    if unknown:
        raise ValueError(f"%%bsp: unknown option(s) {' '.join(unknown)}\n{parser.format_usage()}")
    if options.timeout is not None and not options.timeout > 0:
        raise ValueError(f"%%bsp: --timeout must be a positive number of seconds, not {options.timeout}")
    return options


def run_cell(shell: Any, line: str, cell: str) -> list[Any] | None:
    """Run `cell` as the program on every rank; return the values of its
    last expression (None if it ends otherwise).  Costs the supersteps the
    cell makes."""
    options = parse_options(line)
    if options.help:
        show_help()
        return None
    program = cell_program(shell, cell)
    try:
        with tagged(TAG):
            results = run_with_timeout(program, (), {}, nprocs=options.nprocs, backend="fork",
                                       timeout=options.timeout)
    except BSPError as error:
        error._render_traceback_ = _renderer(error)  # type: ignore[attr-defined]  # IPython shows these lines instead of ours
        raise error from None
    except KeyboardInterrupt:
        interrupt = KeyboardInterrupt()
        interrupt._render_traceback_ = lambda: ["KeyboardInterrupt: the cell's ranks were ended"]  # type: ignore[attr-defined]
        raise interrupt from None
    return results if program.has_value else None  # type: ignore[attr-defined]  # set by cell_program


def cell_program(shell: Any, cell: str) -> Callable[..., Any]:
    """The program of a cell: its body, then its last expression if it ends
    with one, run in the notebook's namespace with `world` bound."""
    source = shell.transform_cell(cell)
    filename = shell.compile.cache(source)      # so that tracebacks show the cell's lines
    tree = ast.parse(source, filename)
    last = None
    if tree.body and isinstance(tree.body[-1], ast.Expr):
        last = compile(ast.Expression(tree.body.pop().value), filename, "eval")
    body = compile(tree, filename, "exec")
    namespace = shell.user_ns

    def program(world: Any) -> Any:
        namespace["world"] = world          # in this rank's copy of the kernel
        exec(body, namespace)
        return eval(last, namespace) if last is not None else None

    program.has_value = last is not None  # type: ignore[attr-defined]  # read by the magic
    return program


def _renderer(error: BSPError) -> Callable[[], list[str]]:
    """The lines IPython shows for a failed cell: a rank's traceback (whose
    text holds no frame of pybsp's, this module's `program` included: see
    bsp.base.tracebacks), or the error's own message."""
    if isinstance(error, RemoteError):
        lines = [f"RemoteError: rank {error.rank} raised "
                 f"{error.remote_traceback.rstrip().splitlines()[-1]}"]
        for rank, text in sorted(error.failures.items()):
            lines += [f"--- traceback of rank {rank} ---", *text.rstrip().splitlines()]
        return lambda: lines
    return lambda: [f"{type(error).__name__}: {error}"]
