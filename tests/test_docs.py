"""The README and docs/ name what exists: every `bsp.x.y` they write
resolves after a plain `import bsp`, and every BSP_* environment variable
the code reads is in the README's table."""

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.mpi_skip       # nothing here runs ranks

ROOT = Path(__file__).resolve().parent.parent
DOCUMENTS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
# A pytest plugin: imported by `from bsp.testing import spmd`, as the README
# shows; `import bsp` importing it would stop pytest from rewriting its asserts.
OWN_IMPORT = "bsp.testing"


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


def test_the_readme_table_has_every_environment_variable_the_code_reads():
    read = {name for folder in ("bsp", "mpi_backend") for path in (ROOT / folder).rglob("*.py")
            for name in re.findall(r"\bBSP_[A-Z_]+[A-Z]\b", path.read_text())}
    table = set(re.findall(r"^\| `(BSP_[A-Z_]+)` \|", (ROOT / "README.md").read_text(), re.MULTILINE))
    assert read, "no BSP_ variables found in the code"
    assert sorted(read - table) == [], "BSP_ variables missing from the README's table of environment variables"
