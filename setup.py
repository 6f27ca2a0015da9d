"""pybsp's build: the engine layer compiled with mypyc where a C compiler and
mypyc are at hand, pure Python otherwise.  The metadata is in pyproject.toml.

COMPILED are the modules compiled: the superstep's own code (the engine, the
framing, the wire, the transports).  The source is the same for both builds;
the pure Python build is the reference.  BSP_PURE_PYTHON=1 at install builds
pure Python; at run time, it runs pure Python over a compiled build (see
bsp/compiled.py, which also keeps a stale compiled module from running in an
editable checkout).  One line on stderr says which build this is (pip shows
it with -v; scripts/setup prints `python bsp/compiled.py`'s line after).

Left out, and why (mypyc's refusals and traps; docs/performance.md):
- bsp/core/dill_pickler.py: a subclass of dill's pickler, compiled, crashed
  the interpreter (a segfault); it stays interpreted;
- nothing else.  Where pybsp is built without mpi4py (pip's isolated build
  environment), mpi_backend/transport.py is compiled without mpi4py's types.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import sys
import sysconfig
import tempfile
from pathlib import Path

from setuptools import Extension, setup
from setuptools.command.build_py import build_py

ROOT = Path(__file__).resolve().parent
COMPILED = ["bsp/core/align.py", "bsp/core/wire.py", "bsp/core/mailbox.py", "bsp/core/engine.py",
            "bsp/core/sender.py", "bsp/core/buffers.py", "bsp/core/plain_arrays.py", "bsp/core/transport.py",
            "bsp/core/observed_engine.py", "bsp/fork/heap.py", "bsp/fork/transport.py",
            "mpi_backend/shared_window.py", "mpi_backend/transport.py"]
# Written in C, the compiled build's only: the copy of a large array at send
# with streaming stores (see its source; the pure Python build copies with a
# slice assignment).
C_COMPILED = ["bsp/core/streaming_copy.c"]
# Not bsp/fork/barrier.py: compiled, its wait loop never let Python run a signal
# handler, so a rank told to end (SIGTERM) was killed before its finally blocks ran.
MANIFEST = ROOT / "bsp" / "compiled_sources.json"    # read by bsp/compiled.py
BUILDING = {"build", "build_ext", "bdist_wheel", "editable_wheel", "install", "develop"}
# An editable install runs this checkout's sources: its build's extensions and
# MANIFEST go into the tree.  Any other build leaves the tree alone (a wheel
# built from a checkout must not change what that checkout runs).
EDITABLE = "editable_wheel" in sys.argv


def say(line: str) -> None:
    print(f"pybsp: {line}", file=sys.stderr, flush=True)


def forced_pure() -> bool:
    return os.environ.get("BSP_PURE_PYTHON", "") not in ("", "0")


def why_pure() -> str | None:
    """Why this build cannot be compiled, or None if it can."""
    if forced_pure():
        return "BSP_PURE_PYTHON is set"
    if importlib.util.find_spec("mypyc") is None:
        return "mypyc is not installed where pybsp is built"
    try:
        probe_compiler()
    except Exception as error:      # whatever the compiler's absence raises: CompileError, OSError...
        return f"no working C compiler ({type(error).__name__}: {error})"
    return None


def probe_compiler() -> None:
    """Compile a file that includes Python.h; raise if that fails."""
    from setuptools._distutils import ccompiler, sysconfig

    compiler = ccompiler.new_compiler()
    sysconfig.customize_compiler(compiler)
    with tempfile.TemporaryDirectory() as scratch:
        source = Path(scratch, "probe.c")
        source.write_text("#include <Python.h>\nint probe(void) { return 0; }\n")
        compiler.compile([str(source)], output_dir=scratch, include_dirs=[sysconfig.get_python_inc()])


def manifest(paths: list[str]) -> str:
    """MANIFEST's text: the SHA-256 of each compiled module's source, and of
    this file (whose COMPILED list an editable checkout may change)."""
    digests = {module_of(path): hashlib.sha256((ROOT / path).read_bytes()).hexdigest() for path in paths}
    setup = hashlib.sha256(Path(__file__).read_bytes()).hexdigest()
    return json.dumps({"modules": digests, "setup": setup}, indent=1) + "\n"


def module_of(path: str) -> str:
    """bsp/core/engine.py -> bsp.core.engine"""
    return str(Path(path).with_suffix("")).replace("/", ".")


class BuildPy(build_py):
    """build_py that puts MANIFEST beside the packages of a compiled build
    (not an editable one, whose MANIFEST is in the tree)."""

    manifest: str | None = None

    def run(self) -> None:
        super().run()
        if self.manifest is not None and not EDITABLE:
            Path(self.build_lib, "bsp", MANIFEST.name).write_text(self.manifest)


def built_here() -> bool:
    """Whether this checkout holds a compiled build of its current sources
    for this interpreter: MANIFEST as this build would write it, and every
    extension with this interpreter's suffix."""
    suffix = sysconfig.get_config_var("EXT_SUFFIX")
    try:
        return MANIFEST.read_text() == manifest(COMPILED + C_COMPILED) and \
            all(stem.with_name(stem.name + suffix).exists() for stem in extension_stems())
    except OSError:
        return False


def extension_stems() -> list[Path]:
    """The paths of the build's extensions, less their suffix (which names the interpreter)."""
    return [ROOT / "bsp_engine__mypyc", *(ROOT / Path(path).with_suffix("") for path in COMPILED + C_COMPILED)]


def remove_extensions() -> None:
    """Remove the extensions an earlier build left in this tree (an
    editable checkout): bsp/compiled.py would not load them, but they
    would lie about."""
    for stem in extension_stems():
        for extension in stem.parent.glob(stem.name + ".*.so"):
            extension.unlink()


def extensions() -> list:  # type: ignore[type-arg]
    # setup.py runs for metadata too (egg_info, dist_info): compile only for a build.
    if not BUILDING.intersection(sys.argv[1:]):
        return []
    if EDITABLE and not forced_pure() and built_here():
        # A second virtual environment installing this checkout (scripts/test's
        # Open MPI one): the extensions in the tree are this interpreter's and
        # current, so compiling them again (most of a minute) would rewrite the same.
        say(f"compiled build (mypyc): {len(COMPILED)} modules of the engine layer, and {len(C_COMPILED)} in C, "
            "already built in this checkout")
        return []
    if EDITABLE:
        MANIFEST.unlink(missing_ok=True)        # until this build is known to be compiled
    reason = why_pure()
    if reason is not None:
        if EDITABLE:
            remove_extensions()
        say(f"pure Python build ({reason})")
        return []
    from mypyc.build import mypycify

    paths = COMPILED
    os.chdir(ROOT)          # mypy reads its configuration (pyproject.toml) from here
    # The rest of pybsp is only read for its types: its errors are scripts/test's
    # business (mypy --strict over the tree), not the build's.
    options = ["--follow-imports=silent"]
    if importlib.util.find_spec("mpi4py") is None:
        # A build without MPI (pip's isolated build environment): mpi4py's
        # objects are of unknown type to mypyc, which calls them as Python does,
        # and what they return is Any (which strict mode would refuse to return).
        options += ["--ignore-missing-imports", "--no-warn-return-any"]
    built = mypycify([*options, *paths], opt_level=os.environ.get("MYPYC_OPT_LEVEL", "3"),
                     group_name="bsp_engine")
    built += [Extension(module_of(path), [path]) for path in C_COMPILED]
    if EDITABLE:
        MANIFEST.write_text(manifest(paths + C_COMPILED))
    else:
        BuildPy.manifest = manifest(paths + C_COMPILED)
    say(f"compiled build (mypyc): {len(paths)} modules of the engine layer, and {len(C_COMPILED)} in C")
    return built


setup(ext_modules=extensions(), cmdclass={"build_py": BuildPy})
