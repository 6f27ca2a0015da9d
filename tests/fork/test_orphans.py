"""A daemon that a rank starts (fork, setsid, fork: orphaned at once, in a
session of its own) ends with the run, in a notebook cell as in a script
(issue 27, item 10): the launching process adopts such orphans during a
run (PR_SET_CHILD_SUBREAPER) and ends them at its end.  (A plain run's
case, and MPI's, are in tests/launch/test_reliability.py.)"""

import re
from pathlib import Path

import psutil
import pytest

pytestmark = pytest.mark.mpi_skip
TESTS = str(Path(__file__).resolve().parent.parent)


def running(pid):
    try:
        return psutil.Process(pid).status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False


def test_a_daemon_a_rank_starts_in_a_notebook_cell_ends_with_the_cell(tmp_path):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    cells = ["%load_ext bsp",
             f"%%bsp -n 2\nimport sys\nsys.path.insert(0, {TESTS!r})\nimport fault_injection\n"
             f"if world.pid == 1:\n    print('DAEMON', fault_injection.start_daemon({str(tmp_path / 'pid')!r}))\n"
             "world.sync()",
             "import psutil\nprint('ADOPTED', [p.pid for p in psutil.Process().children()])"]
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbclient.NotebookClient(notebook, timeout=60, kernel_name="python3").execute()
    text = "".join(output.get("text", "") for cell in notebook.cells for output in cell.outputs)
    daemon = int(re.search(r"DAEMON (\d+)", text).group(1))
    assert not running(daemon), text
    assert "ADOPTED []" in text         # nothing left to the kernel either
