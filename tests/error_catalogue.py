"""Write docs/errors.md: the catalogue of bad inputs (tests/bad_inputs.py)
with the message each one raises, as measured by running them.

    .venv/bin/python tests/error_catalogue.py
"""

from __future__ import annotations

from pathlib import Path

from bad_inputs import IN_RANK, NPROCS, OUTSIDE      # beside this file: tests/ is on sys.path

import bsp

ROOT = Path(__file__).resolve().parent.parent

HEADER = """# Errors and bad inputs

Every public call checks its arguments where it is made, on the rank that
made it, and raises with a message that says what was wrong.  This page is
generated from the test catalogue (`tests/bad_inputs.py`, checked on both
backends by `tests/launch/test_bad_inputs.py`) by `tests/error_catalogue.py`;
the messages are the ones the calls raise, with {nprocs} ranks.

Errors of a run as a whole (a rank that raises, ranks that disagree, a rank
that dies, ranks that never reach a sync) are described in the guide's
[When things go wrong](guide/debugging.md#when-things-go-wrong).

| what was wrong | raises | message |
|---|---|---|
"""


def _message_in_rank(world, index: int) -> str | None:
    case = IN_RANK[index]
    made = case.setup(world)
    if world.pid != 0:
        return None
    try:
        case.call(world, made)
    except case.error as error:
        return str(error)
    raise AssertionError(f"{case.what}: no {case.error.__name__}")


def _message_outside(case) -> str:
    try:
        case.call()
    except case.error as error:
        return str(error)
    raise AssertionError(f"{case.what}: no {case.error.__name__}")


def _row(what: str, error: type, message: str) -> str:
    first_line = message.strip().splitlines()[0] if message.strip() else ""
    return f"| {what} | `{error.__name__}` | {first_line.replace('|', '/')} |\n"


def render() -> str:
    rows = []
    for index, case in enumerate(IN_RANK):
        message = bsp.run(_message_in_rank, index, nprocs=NPROCS, backend="fork")[0]
        rows.append(_row(case.what, case.error, message))
    for case in OUTSIDE:
        rows.append(_row(case.what, case.error, _message_outside(case)))
    return HEADER.format(nprocs=NPROCS) + "".join(rows)


if __name__ == "__main__":
    (ROOT / "docs" / "errors.md").write_text(render())
    print(f"wrote docs/errors.md: {len(IN_RANK) + len(OUTSIDE)} bad inputs")
