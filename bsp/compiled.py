"""Which build of pybsp's engine layer runs: compiled or pure Python.

setup.py compiles a few modules of the engine layer with mypyc when it can
(see its COMPILED list and docs/performance.md), and one written in C (its
C_COMPILED, which only the compiled build uses); each compiled module is an
extension (`engine.cpython-311-x86_64-linux-gnu.so`) beside its source, and
Python's own import system prefers the extension.  The source is the same:
the pure Python build is the reference, the compiled one a faster copy of
it.  The build writes MANIFEST, the SHA-256 of each compiled module's source.

This module, imported before any other of pybsp (`bsp/__init__.py` and
`mpi_backend/__init__.py` import it first), decides once per process which
build runs, and installs an import hook that loads the sources instead of
the extensions unless the compiled build is the one:

- the compiled build runs when MANIFEST is there, BSP_PURE_PYTHON is not set
  (or is 0), and every compiled module's source is still the one compiled;
- otherwise every module of pybsp loads from its source, and a module
  written in C does not load (ModuleNotFoundError: its user falls back).  In an editable
  checkout, a source edited since the build (its extension is stale) makes
  the whole process run pure Python, never a stale extension: compiled
  modules call each other directly, so one module cannot be swapped alone.
  `bsp doctor` says so; `scripts/setup` rebuilds (or `pip install -e .`).

Cost: hashing the compiled modules' sources once, at import (well under a
millisecond), and one look at the directory of each pybsp module imported.
Run as a script (`python bsp/compiled.py`), it prints which build runs and
exits 0 if compiled, 1 if stale, 2 if pure (scripts/setup's test).
"""

from __future__ import annotations

import hashlib
import importlib.abc
import importlib.machinery
import importlib.util
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Sequence

ROOT = Path(__file__).resolve().parent.parent       # where the packages bsp and mpi_backend lie
MANIFEST = ROOT / "bsp" / "compiled_sources.json"
_PACKAGES = ("bsp.", "mpi_backend.")


def forced_pure() -> bool:
    """Whether BSP_PURE_PYTHON asks for the pure Python build."""
    return os.environ.get("BSP_PURE_PYTHON", "") not in ("", "0")


def _source(module: str) -> Path:
    """A module's source: its .py, or its .c for an extension written in C
    (bsp/core/streaming_copy.c), which has no Python source to fall back on."""
    path = ROOT.joinpath(*module.split("."))
    written_in_c = path.with_suffix(".c")
    return written_in_c if written_in_c.exists() else path.with_suffix(".py")


def _extension(module: str) -> Path | None:
    source = _source(module)
    for suffix in importlib.machinery.EXTENSION_SUFFIXES:
        candidate = source.with_suffix(suffix)
        if candidate.exists():
            return candidate
    return None


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _examine() -> tuple[str, list[str]]:
    """(which build runs: "compiled", "stale" or "pure"; the compiled
    modules, or for "stale" those whose source changed or whose extension
    is missing)."""
    try:
        manifest = json.loads(MANIFEST.read_text())
        built: dict[str, str] = manifest["modules"]
    except (OSError, ValueError, KeyError):
        return "pure", []
    changed = [module for module, digest in sorted(built.items())
               if not _source(module).exists() or _digest(_source(module)) != digest or _extension(module) is None]
    # In a checkout, setup.py's list of what to compile may have changed too.
    setup = ROOT / "setup.py"
    if "setup" in manifest and setup.exists() and _digest(setup) != manifest["setup"]:
        changed.append("setup.py")
    return ("stale", changed) if changed else ("compiled", sorted(built))


_BUILD, _MODULES = _examine()
COMPILED = _BUILD == "compiled" and not forced_pure()


def installed() -> bool:
    """Whether a compiled build is installed and current (whichever build
    this process runs)."""
    return _BUILD == "compiled"


def describe() -> str:
    """One line: which build runs in this process, and why."""
    if COMPILED:
        in_c = sum(_source(module).suffix == ".c" for module in _MODULES)
        return f"compiled (mypyc): {len(_MODULES) - in_c} modules of the engine layer, and {in_c} in C"
    if _BUILD == "compiled":
        return f"pure Python (BSP_PURE_PYTHON={os.environ['BSP_PURE_PYTHON']}; the compiled build is installed)"
    if _BUILD == "stale":
        return ("pure Python: the compiled build is stale (changed since it was built: "
                + ", ".join(_MODULES) + "); rebuild it with scripts/setup or pip install -e .")
    return "pure Python (no compiled build is installed)"


class _SourcesFirst(importlib.abc.MetaPathFinder):
    """Loads a pybsp module from its source when an extension of the same
    name lies beside it but is not to run (see the module's docstring)."""

    def find_spec(self, name: str, path: Sequence[str] | None = None,
                  target: ModuleType | None = None) -> importlib.machinery.ModuleSpec | None:
        if not name.startswith(_PACKAGES) or (COMPILED and name in _MODULES):
            return None
        source = _source(name)
        if _extension(name) is None or not source.exists():
            return None         # the usual finders find it, as they would anyway
        if source.suffix == ".c":
            raise ModuleNotFoundError(f"{name} is written in C, part of the compiled build, which this process "
                                      f"does not run: {describe()}", name=name)
        return importlib.util.spec_from_file_location(name, source)


# Installed for every build: an extension left over from an earlier build
# (a pure build installed over a compiled one) is never loaded either.
if __name__ != "__main__" and not any(isinstance(finder, _SourcesFirst) for finder in sys.meta_path):
    sys.meta_path.insert(0, _SourcesFirst())


if __name__ == "__main__":
    print(describe())
    sys.exit({"compiled": 0, "stale": 1}.get(_BUILD, 2) if not forced_pure() else 2)
