"""`bsp run --record FILE` and `bsp replay FILE [--rank R] [--pdb] [--from-file]`."""

from __future__ import annotations

import argparse
import ast
import bdb
import os
import random
import sys
import traceback
from typing import Any, Callable

from bsp.base.callsite import PACKAGE_DIR
from bsp.errors import BSPError
from bsp.recordings.record_file import END, ERROR, RecordFile
from bsp.recordings.recording import choose_path


def record_settings(path: str, checkpoint: Any = False, option: str = "--record") -> dict[str, str]:
    """The environment that makes a script's runs record at `path`.  The
    hash seed is fixed (unless the user fixed it), and recorded, so that
    `bsp replay` can use the same one: the order of a set of strings, and so
    the bytes a program sends, depend on it.  Raises ValueError for a path
    in a missing directory, or with a `checkpoint` directory (see
    bsp.recordings.recording.choose_path)."""
    record = choose_path(path, checkpoint, option)
    env = {} if record is None else {"BSP_RECORD": record}
    if not os.environ.get("PYTHONHASHSEED"):
        env["PYTHONHASHSEED"] = str(random.randrange(1, 2**32))
    return env


def add_command(commands: Any) -> None:
    replay = commands.add_parser(
        "replay", help="rerun one rank of a recorded run alone, under pdb if asked",
        description="Rerun rank R of a run recorded with `bsp run --record FILE` (or bsp.run(..., "
                    "record=FILE)) in this process, alone: its syncs deliver what they delivered in the "
                    "run, so it computes what it computed then, and breakpoint() and pdb work.  Without "
                    "--rank, describe the record (which unpickles nothing).  A replay unpickles the "
                    "recorded program: replay only records you trust (a record that another user owns or "
                    "could write is refused).")
    replay.add_argument("record", help="the record file")
    replay.add_argument("--rank", type=int, help="the rank to replay")
    replay.add_argument("--pdb", action="store_true",
                        help="start the program under pdb, stopped at its first line; post-mortem if it raises")
    replay.add_argument("--from-file", action="store_true",
                        help="run the program as its file reads now (edited since the run: a breakpoint(), "
                             "a fix), rather than the code recorded; the file's top level runs with bsp.run "
                             "turned off, skipping the statements that call it")


def replay_command(options: argparse.Namespace) -> int:
    from bsp.recordings.replay import load_call, replay
    try:
        with RecordFile(options.record) as record:
            manifest = record.manifest
            if options.rank is None:
                print(describe(record))
                return 0
    except BrokenPipeError:
        raise                   # the reader of our output left: bsp.cli ends quietly
    except (OSError, ValueError) as error:
        print(f"bsp replay: {error}", file=sys.stderr)
        return 2
    seed = manifest.get("hash_seed")
    if seed and os.environ.get("PYTHONHASHSEED") != seed:
        _rerun_with_hash_seed(options, seed)
    try:
        program = program_from_file(manifest) if options.from_file else None
        value = replay(options.record, options.rank, program=program, debug=options.pdb)
    except bdb.BdbQuit:
        print("bsp replay: quit in pdb", file=sys.stderr)
        return 0
    except (TypeError, ValueError, BSPError) as error:
        print(f"bsp replay: {type(error).__name__}: {error}", file=sys.stderr)
        return 1
    except Exception as error:
        print(f"bsp replay: rank {options.rank}'s program raised:", file=sys.stderr)
        traceback.print_exception(type(error), error, _program_frames(error.__traceback__))
        print(f"(the recorded run ended: {manifest['ending'].splitlines()[0]})", file=sys.stderr)
        return 1
    print(f"rank {options.rank} returned {value!r} ({_compared(options.record, options.rank, value)})")
    return 0


def _program_frames(tb: Any) -> Any:
    """The traceback from the first frame outside the bsp package on."""
    while tb is not None and tb.tb_frame.f_code.co_filename.startswith(PACKAGE_DIR):
        tb = tb.tb_next
    return tb


def _compared(path: str, rank: int, value: Any) -> str:
    """Whether `value` is what rank `rank` returned in the run."""
    with RecordFile(path) as record:
        try:
            recorded = record.result(rank)
        except LookupError:
            return "in the run, it did not return"
    from bsp.recordings.replay import identical
    return "the same as in the run" if identical(value, recorded) else f"in the run: {recorded!r}"


def _rerun_with_hash_seed(options: argparse.Namespace, seed: str) -> None:
    """Start this command again with the run's hash seed; never returns."""
    argv = [sys.executable, "-m", "bsp", "replay", options.record, "--rank", str(options.rank)]
    argv += ["--pdb"] * options.pdb + ["--from-file"] * options.from_file
    sys.stdout.flush()
    os.execve(argv[0], argv, {**os.environ, "PYTHONHASHSEED": seed})


def program_from_file(manifest: dict[str, Any]) -> Callable[..., Any]:
    """The recorded program's function as its file defines it now.  The
    file's top level runs statement by statement, as a module not named
    __main__, with the recorded sys.argv and with bsp.run turned off: a
    statement that calls bsp.run (or fails, as one that uses a run's
    results would) is skipped, so that the definitions after it are read
    but no run starts.  Raises BSPError if the file or the function is not
    there, naming the statements skipped."""
    path, name = manifest.get("program_file"), manifest["program_name"].rsplit(".", 1)[-1]
    if not path or not os.path.isfile(path):
        raise BSPError(f"--from-file: the program's file {path!r} is not here")
    namespace, skipped = _definitions(path, manifest.get("argv") or [path])
    if not callable(namespace.get(name)):
        said = "".join(f"\n  skipped line {line}: {why}" for line, why in skipped)
        raise BSPError(f"--from-file: {path} defines no function {name!r} at its top level{said}")
    found: Callable[..., Any] = namespace[name]
    return found


def _definitions(path: str, argv: list[str]) -> tuple[dict[str, Any], list[tuple[int, str]]]:
    """The namespace of `path`'s top level run with bsp.run turned off, and
    the (line, reason) of each statement skipped."""
    from bsp.launch.bsp_run import RunTurnedOff, runs_turned_off
    with open(path, "rb") as file:
        tree = ast.parse(file.read(), path)
    namespace: dict[str, Any] = {"__name__": "__bsp_replay__", "__file__": path, "__builtins__": __builtins__}
    skipped = []
    saved_argv, sys.argv = sys.argv, list(argv)
    try:
        with runs_turned_off("bsp replay --from-file reads the script's definitions, and replays its run"):
            for statement in tree.body:
                code = compile(ast.Module(body=[statement], type_ignores=[]), path, "exec")
                try:
                    exec(code, namespace)
                except (Exception, RunTurnedOff) as error:
                    skipped.append((statement.lineno, "it calls bsp.run" if isinstance(error, RunTurnedOff)
                                    else f"{type(error).__name__}: {error}"))
    finally:
        sys.argv = saved_argv
    return namespace, skipped


def describe(record: RecordFile) -> str:
    """What a record holds: the run, and each rank's exchanges."""
    manifest = record.manifest
    lines = [f"{record.path}: {manifest['program_name']} on {manifest['nprocs']} ranks "
             f"({manifest['backend']} backend, host {manifest['host']}, Python {manifest['python']})",
             f"  {manifest['ending']}"]
    for pid in record.ranks():
        tags = record.tags(pid)
        exchanges, ended, failed = len(tags) - tags.count(END), END in tags, ERROR in tags
        state = "complete" if ended else "cut short (the rank's process ended while recording)"
        lines.append(f"  rank {pid}: {exchanges} exchanges, {state}{', ended by an error' if failed else ''}")
    return "\n".join(lines)
