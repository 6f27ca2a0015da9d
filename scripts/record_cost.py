#!/usr/bin/env python3
"""What recording a run costs (bsp.run(..., record=path)), measured on two
examples: the time of the run with and without recording (medians of
several runs, in the same process), the bytes the ranks received (payload,
from the profile; and as framed blocks, from the record) against the bytes
of the record file, and the time a replay of one rank takes.  The record holds what arrived (framed as
it arrived), the results the ranks returned, and the program.

    .venv/bin/python scripts/record_cost.py [--nprocs 2 4] [--repeat 5]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import bsp  # noqa: E402
from bsp.recordings.record_file import EXCHANGE, RecordFile

CASES = [("sample_sort.py", "sample_sort", (1 << 20,)), ("stencil.py", "heat", (400, 200))]


def load_example(name: str):
    spec = importlib.util.spec_from_file_location(name[:-3], ROOT / "examples" / name)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(call) -> float:
    start = time.perf_counter()
    call()
    return time.perf_counter() - start


def received_in_record(path: str) -> tuple[int, int, int]:
    """(exchanges, bytes of the blocks that arrived) over all ranks, and the
    bytes of the results the record keeps."""
    exchanges = nbytes = 0
    with RecordFile(path) as record:
        results = sum(record.result_sizes().values())
        for pid in record.ranks():
            for entry in record.entries(pid):
                if entry.tag == EXCHANGE:
                    exchanges += 1
                    nbytes += sum(block[0].nbytes for block in entry.incoming.values())
    return exchanges, nbytes, results


def measure(example: str, function: str, args: tuple, nprocs: int, repeat: int, folder: str) -> dict:
    program = getattr(load_example(example), function)
    path = os.path.join(folder, "run.bsprec")
    plain, recorded = [], []
    for _ in range(repeat):         # interleaved, so that a slow moment of the machine hits both
        plain.append(timed(lambda: bsp.run(program, *args, nprocs=nprocs)))
        recorded.append(timed(lambda: bsp.run(program, *args, nprocs=nprocs, record=path)))
    profiles = []
    bsp.run(program, *args, nprocs=nprocs, profile=profiles.append)
    payload = int(profiles[0].bytes_received.sum())
    exchanges, blocks, results = received_in_record(path)
    replay = statistics.median(timed(lambda: bsp.replay(path, rank=0)) for _ in range(repeat))
    return {"example": example, "nprocs": nprocs, "plain": statistics.median(plain),
            "recorded": statistics.median(recorded), "payload": payload, "blocks": blocks,
            "exchanges": exchanges, "results": results, "file": os.path.getsize(path), "replay": replay}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", type=int, nargs="+", default=[2, 4])
    parser.add_argument("--repeat", type=int, default=5)
    options = parser.parse_args()
    print(f"Python {sys.version.split()[0]}, numpy {np.__version__}, {os.cpu_count()} cores; "
          f"medians of {options.repeat} runs")
    print(f"{'example':<16}{'p':>3}{'run':>10}{'recorded':>10}{'overhead':>10}{'received':>12}"
          f"{'(framed)':>12}{'results':>12}{'record':>12}{'record/rec':>11}{'replay r0':>11}")
    with tempfile.TemporaryDirectory() as folder:
        for example, function, args in CASES:
            for nprocs in options.nprocs:
                row = measure(example, function, args, nprocs, options.repeat, folder)
                print(f"{row['example']:<16}{row['nprocs']:>3}{row['plain']:>9.3f}s{row['recorded']:>9.3f}s"
                      f"{row['recorded'] / row['plain'] - 1:>+10.0%}{row['payload']:>12,}{row['blocks']:>12,}"
                      f"{row['results']:>12,}{row['file']:>12,}{row['file'] / row['payload']:>10.2f}x{row['replay']:>10.3f}s")


if __name__ == "__main__":
    main()
