"""The README and docs/ name what exists: every `bsp.x.y` they write
resolves after a plain `import bsp`, every BSP_* environment variable the
code reads is in the guide's table, the README's layout names every
package; the site builds with warnings as errors (so that every link and
cross-reference resolves), and its API reference has an entry for every
public name and method."""

import inspect
import re
import subprocess
import sys
import zlib
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi_skip       # nothing here runs ranks

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DOCUMENTS = [README, *sorted((ROOT / "docs").rglob("*.md"))]
ENVIRONMENT_TABLE = ROOT / "docs" / "guide" / "getting-started.md"
# A pytest plugin: imported by `from bsp.testing import spmd`, as the guide
# shows; `import bsp` importing it would stop pytest from rewriting its asserts.
OWN_IMPORT = "bsp.testing"
# Public names beyond bsp.__all__ that the reference must show.
FRONT_ENDS = ["bsp.testing.spmd", "bsp.testing.run_spmd", "bsp.testing.assert_ranks_raise", "bsp.pregel.Graph",
              "bsp.pregel.Graph.push", "bsp.observe.profile.Profile", "bsp.observe.logs.configure",
              "bsp.observe.timeline.plot", "bsp.machine.measure"]


def test_every_dotted_name_the_documents_write_resolves_after_import_bsp():
    names = sorted({name for document in DOCUMENTS
                    for name in re.findall(r"\bbsp(?:\.[A-Za-z_]+)+", document.read_text())
                    if not name.startswith(OWN_IMPORT)})
    check = ("import bsp, sys\n"
             "for name in sys.argv[1:]:\n"
             "    obj = bsp\n"
             "    for part in name.split('.')[1:]:\n"
             "        obj = getattr(obj, part, None)\n"
             "    if obj is None: print(name)\n")
    done = subprocess.run([sys.executable, "-c", check, *names], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == [], f"named in the documents, missing after import bsp: {done.stdout.split()}"


def test_the_guide_table_has_every_environment_variable_the_code_reads():
    read = {name for folder in ("bsp", "mpi_backend") for path in (ROOT / folder).rglob("*.py")
            for name in re.findall(r"\bBSP_[A-Z_]+[A-Z]\b", path.read_text())}
    table = set(re.findall(r"^\| `(BSP_[A-Z_]+)` \|", ENVIRONMENT_TABLE.read_text(), re.MULTILINE))
    assert read, "no BSP_ variables found in the code"
    assert sorted(read - table) == [], f"BSP_ variables missing from the table in {ENVIRONMENT_TABLE.name}"


def test_the_readme_layout_names_every_package_and_only_what_exists():
    section = README.read_text().split("## Layout\n", 1)[1].split("\n## ", 1)[0]
    listed = re.findall(r"^    ([\w/.]+/)\s", section, re.MULTILINE)
    assert [path for path in listed if not (ROOT / path).is_dir()] == []
    packages = {init.parent.relative_to(ROOT).as_posix() + "/"
                for folder in ("bsp", "mpi_backend") for init in (ROOT / folder).rglob("__init__.py")}
    assert sorted(packages - set(listed)) == [], "packages missing from the README's layout"


def test_every_path_the_documents_write_exists():
    written = {(document.relative_to(ROOT).as_posix(), path) for document in DOCUMENTS
               for path in re.findall(r"\b((?:bsp|mpi_backend|tests|scripts|examples)/[\w/.-]*\w)", document.read_text())
               if "/X." not in path}        # examples/X.py: any example
    assert written, "no paths found in the documents"
    assert sorted((document, path) for document, path in written if not (ROOT / path).exists()) == []


def public_names() -> list[str]:
    """Every name of bsp.__all__ and, for its classes, every public method and
    attribute that pybsp defines (not those of object or Exception)."""
    import bsp

    names = []
    for name in bsp.__all__:
        names.append(f"bsp.{name}")
        value = getattr(bsp, name)
        if inspect.isclass(value):
            names += sorted({f"bsp.{name}.{member}" for klass in value.__mro__
                             if klass.__module__.split(".")[0] == "bsp"
                             for member in vars(klass) if not member.startswith("_")})
    return names + FRONT_ENDS


def inventory(site: Path) -> set[str]:
    """The identifiers the site's objects.inv lists (Sphinx's format, which
    mkdocstrings writes): every entry of the API reference."""
    header, _, body = site.joinpath("objects.inv").read_bytes().partition(b"zlib.\n")
    assert header.startswith(b"# Sphinx inventory version 2"), header[:40]
    return {line.split()[0] for line in zlib.decompress(body).decode().splitlines() if line.strip()}


def test_the_site_builds_strictly_and_its_reference_has_every_public_name(tmp_path):
    pytest.importorskip("mkdocs", reason="the docs tools are the [docs] extra")
    pytest.importorskip("black", reason="the docs tools are the [docs] extra (black formats signatures)")
    # Not --quiet: it hides the warnings from --strict's count too, and the build passes with them.
    done = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-d", str(tmp_path / "site")],
                          cwd=ROOT, capture_output=True, text=True, timeout=300,
                          env={**_environment(), "NO_MKDOCS_2_WARNING": "1"})
    # --strict fails on a link to a missing page or anchor and on a cross-reference
    # ([`bsp.arrays.halo`][]) that names no entry of the reference.
    assert done.returncode == 0, done.stderr[-5000:]
    assert "requires either Black or Ruff" not in done.stderr, "signatures are not formatted"
    entries = inventory(tmp_path / "site")
    assert [name for name in public_names() if name not in entries] == [], "public names the reference lacks"


def _environment() -> dict[str, str]:
    import os
    return {key: value for key, value in os.environ.items() if not key.startswith("BSP_")}
