"""The %%bsp magic and plain bsp.run in a real Jupyter kernel, run headless
with nbclient: whole lines tagged with their rank, the notebook's names
visible, errors shown with the failing rank's traceback, and a kernel that
survives errors, dead ranks, timeouts and interrupts, with no rank left."""

import re

import pytest

nbformat = pytest.importorskip("nbformat")
nbclient = pytest.importorskip("nbclient")
pytest.importorskip("ipykernel")

# These tests start a kernel of their own: the fork leg of the suite runs them.
pytestmark = pytest.mark.mpi_skip

INTERRUPT_AFTER = 6         # seconds: nbclient interrupts a cell that runs longer

CELLS = {
    "load": "%load_ext bsp\nbase = 100\ndef helper(x):\n    return x * 2",
    "three": "%%bsp -n 3\nprint(f'rank {world.pid} says hello to {world.nprocs - 1} others')\n"
             "world.allreduce(helper(world.pid)) + base",
    "many": "%%bsp -n 3\nimport sys\nfor i in range(300):\n    sys.stdout.write(f'{world.pid}:{i}:' + 'x' * 120)\n"
            "    sys.stdout.write('\\n')",
    "plain": "import bsp\ndef chatty(world):\n    for i in range(200):\n        print(f'{world.pid}:{i}:' + 'y' * 120)\n"
             "    return world.pid\nbsp.run(chatty, nprocs=3)",
    "error": "%%bsp -n 3\nworld.sync()\nif world.pid == 2:\n    raise ValueError('rank two is unhappy')\nworld.sync()",
    "dies": "%%bsp -n 2\nimport os\nif world.pid == 1:\n    os._exit(4)\nworld.sync()",
    "timeout": "%%bsp -n 2 --timeout 1\nimport time\ntime.sleep(60)",
    "bad option": "%%bsp --ranks 2\npass",
    "help": "%%bsp --help",
    "help with a body": "%%bsp -n 2 -h\nprint('not run')",
    "interrupt": "%%bsp -n 2\nimport time\nprint('sleeping', flush=True)\ntime.sleep(600)",
    "after": "import psutil\nprint('alive with', len(psutil.Process().children(recursive=True)), 'children')",
}


@pytest.fixture(scope="module")
def outputs():
    """Every cell's outputs, by name, from one kernel that runs them all."""
    notebook = nbformat.v4.new_notebook()
    notebook.cells = [nbformat.v4.new_code_cell(source) for source in CELLS.values()]
    client = nbclient.NotebookClient(notebook, timeout=INTERRUPT_AFTER, interrupt_on_timeout=True,
                                     allow_errors=True, kernel_name="python3")
    client.execute()
    return {name: cell.outputs for name, cell in zip(CELLS, notebook.cells)}


def stream_lines(cell_outputs, name="stdout"):
    text = "".join(output["text"] for output in cell_outputs
                   if output["output_type"] == "stream" and output["name"] == name)
    return text.splitlines()


def error_of(cell_outputs):
    [error] = [output for output in cell_outputs if output["output_type"] == "error"]
    return error


def test_each_rank_prints_a_whole_tagged_line_and_the_cell_returns_every_rank_value(outputs):
    lines = stream_lines(outputs["three"])
    assert sorted(lines) == [f"[rank {pid}] rank {pid} says hello to 2 others" for pid in range(3)]
    [result] = [output for output in outputs["three"] if output["output_type"] == "execute_result"]
    assert result["data"]["text/plain"] == "[106, 106, 106]"       # helper and base from the notebook


def test_many_long_lines_written_in_pieces_come_out_whole_and_tagged(outputs):
    lines = stream_lines(outputs["many"])
    assert len(lines) == 900
    for line in lines:
        match = re.fullmatch(r"\[rank (\d)\] (\d):(\d+):x{120}", line)
        assert match and match[1] == match[2], line
    for pid in range(3):            # each rank's lines in its order
        assert [int(line.split(":")[1]) for line in lines if line.startswith(f"[rank {pid}]")] == list(range(300))


def test_a_plain_run_from_a_notebook_writes_whole_lines(outputs):
    lines = stream_lines(outputs["plain"])
    assert len(lines) == 600
    assert all(re.fullmatch(r"\d:\d+:y{120}", line) for line in lines), lines


def test_a_failing_rank_shows_the_remote_error_with_its_traceback(outputs):
    error = error_of(outputs["error"])
    assert error["ename"] == "RemoteError"
    shown = "\n".join(error["traceback"])
    assert shown.startswith("RemoteError: rank 2 raised ValueError: rank two is unhappy")
    assert "--- traceback of rank 2 ---" in shown
    assert "raise ValueError('rank two is unhappy')" in shown        # the cell's own line
    assert "bsp/notebook.py" not in shown and "bsp/notebook.py" not in error["evalue"]     # nor in str(error)


def test_bsp_help_shows_the_magics_help_and_runs_nothing(outputs):
    for cell in ("help", "help with a body"):
        lines = stream_lines(outputs[cell])
        assert lines[0].startswith("usage: %%bsp [-h] [-n NPROCS] [--timeout TIMEOUT]"), lines
        assert any("-n NPROCS, --nprocs NPROCS" in line for line in lines) and "not run" not in lines
        assert not [output for output in outputs[cell] if output["output_type"] == "error"]


def test_a_dead_rank_and_a_timeout_are_one_line_errors(outputs):
    assert error_of(outputs["dies"])["traceback"] == [
        "RankDiedError: rank 1 died: exited with status 4 before finishing the program (os._exit, or a crash)"]
    [line] = error_of(outputs["timeout"])["traceback"]
    assert line.startswith("RunTimeoutError: the run exceeded its time limit of 1 s")


def test_a_bad_option_says_what_is_wrong(outputs):
    error = error_of(outputs["bad option"])
    assert error["ename"] == "ValueError" and "unknown option(s) --ranks 2" in error["evalue"]


def test_an_interrupt_ends_the_ranks_and_the_kernel_goes_on(outputs):
    assert sorted(stream_lines(outputs["interrupt"])) == ["[rank 0] sleeping", "[rank 1] sleeping"]
    assert error_of(outputs["interrupt"])["ename"] == "KeyboardInterrupt"
    assert stream_lines(outputs["after"]) == ["alive with 0 children"]
