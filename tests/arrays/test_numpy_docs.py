"""docs/numpy.md names every numpy function a DistArray answers (the
registry bsp.arrays.numpy_functions.HANDLED), so the page cannot drift
from the code; and its example program runs."""

import re
from pathlib import Path

import pytest

import bsp
from bsp.arrays.numpy_functions import HANDLED

PAGE = Path(__file__).resolve().parents[2] / "docs" / "numpy.md"
pytestmark = pytest.mark.mpi_skip


def spelling(function):
    """How the page names it: np.name, or np.submodule.name."""
    module = getattr(function, "__module__", "numpy") or "numpy"
    inside = module.split(".")[1:] if module.startswith("numpy.") else []
    inside = [part for part in inside if not part.startswith("_")]
    return ".".join(["np", *inside, function.__name__])


def test_every_registered_function_is_on_the_page():
    text = PAGE.read_text()
    missing = sorted(name for name in map(spelling, HANDLED)
                     if not re.search(rf"`{re.escape(name)}`", text))
    assert not missing, f"docs/numpy.md does not name {missing}"


def test_the_page_names_no_function_that_is_not_registered():
    """Every `np.f` in the tables' first columns is registered (or a ufunc)."""
    import numpy as np
    text = PAGE.read_text()
    names = {spelling(function) for function in HANDLED}
    for row in (line for line in text.splitlines() if line.startswith("| `np.")):
        for name in re.findall(r"`(np\.[a-z_.]+)`", row.split(" | ")[0]):
            assert name in names or isinstance(eval(name, {"np": np}), np.ufunc), name


def test_the_pages_example_runs():
    code = PAGE.read_text().split("```python\n", 1)[1].split("```", 1)[0]
    namespace = {}
    exec(compile(code.replace("print(bsp.run(program, nprocs=4)[0])", ""), str(PAGE), "exec"), namespace)
    total, labels = bsp.run(namespace["program"], nprocs=2)[0]
    assert total > 0 and set(labels.tolist()) <= {0, 1, 2}
