"""Imported by Python at start-up in a script that `bsp run` started (see
bsp.script_hook): takes itself off the path, then, at exit, warns if the
script never called bsp.run."""

from __future__ import annotations

import atexit
import importlib.machinery
import importlib.util
import os
import sys
from types import TracebackType

_HERE = os.path.dirname(os.path.abspath(__file__))
_failed = False


def _mute_unless_rank_0() -> bool:
    """Whether this process is rank 0 of its MPI job (or in none); if not,
    its stdout goes to /dev/null until its first bsp.run, which takes back
    the descriptor saved in _BSP_HOOK_MUTED_STDOUT (see bsp.script_hook)."""
    names = os.environ.pop("_BSP_HOOK_RANK_VARIABLES", "")
    rank = next((os.environ[name] for name in names.split(",") if name in os.environ), "0") if names else "0"
    if rank == "0":
        return True
    saved = os.dup(1)
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, 1)
    os.close(devnull)
    os.environ["_BSP_HOOK_MUTED_STDOUT"] = str(saved)
    return False


def _leave_no_trace() -> tuple[str, str]:
    """Take the hook off sys.path and PYTHONPATH; return its settings.  (The
    variables' names are bsp.script_hook's, written out: importing it would
    import bsp, and numpy, into every script's start-up.)"""
    sys.path[:] = [entry for entry in sys.path if os.path.abspath(entry or ".") != _HERE]
    option = os.environ.pop("_BSP_HOOK_OPTION", "")
    target = os.environ.pop("_BSP_HOOK_TARGET", "the script")
    original = os.environ.pop("_BSP_HOOK_PYTHONPATH", None)
    if original is None:
        os.environ.pop("PYTHONPATH", None)
    else:
        os.environ["PYTHONPATH"] = original
    return option, target


def _load_the_hidden_sitecustomize() -> None:
    """Run the sitecustomize this one hid, if there is one, and leave it in
    sys.modules in this one's place (the import that runs this module
    returns what is there at its end)."""
    spec = importlib.machinery.PathFinder.find_spec("sitecustomize", sys.path)
    if spec is None or spec.loader is None:
        return
    hidden = importlib.util.module_from_spec(spec)
    sys.modules["sitecustomize"] = hidden
    spec.loader.exec_module(hidden)


def _note_failure(kind: type[BaseException], value: BaseException, traceback: TracebackType | None) -> None:
    global _failed
    _failed = True
    _previous_hook(kind, value, traceback)


def _warn_if_unused(option: str, target: str) -> None:
    launch = sys.modules.get("bsp.launch.bsp_run")
    if not _failed and getattr(launch, "runs_started", 0) == 0:
        sys.stdout.flush()
        print(f"bsp run: {option} had nothing to act on: {target} never called bsp.run", file=sys.stderr)


_rank_0 = _mute_unless_rank_0()
_option, _target = _leave_no_trace()
_load_the_hidden_sitecustomize()
_previous_hook = sys.excepthook
sys.excepthook = _note_failure
if _rank_0:
    atexit.register(_warn_if_unused, _option, _target)
