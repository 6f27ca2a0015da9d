"""The per-superstep tax (tax_report.py) on both builds of the engine layer,
interleaved: round r runs `run.py --only tax --rounds 1` on the pure Python
build (BSP_PURE_PYTHON=1), then on the compiled one, so that both see the
same load.  Each row is the median over the rounds of the ratio taken
within one round (pybsp against raw mpi4py in the same MPI job and run),
with the load average beside it.

    .venv/bin/python scripts/benchmarks/builds.py [--rounds 5] [--nprocs 2] [--json FILE]
        [--variant nbx:BSP_PURE_PYTHON=0,BSP_MPI_DENSE_RANKS=0] [--checkout base:/tmp/base]

--checkout NAME:PATH adds the compiled build of another checkout (a
`git worktree` of an earlier commit, set up with its own scripts/setup), run
by its own .venv and benchmark scripts: an A/B of two commits in one run.

Prints a markdown table; needs the compiled build installed (scripts/setup)."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
KIB, MIB = 1 << 10, 1 << 20
# (row, pybsp's key, raw mpi4py's key, whether the ratio is raw / pybsp (throughput) or pybsp / raw (time))
ROWS = ([(f"{count} message(s) per rank / mpi4py alltoall", f"messages|{count}", f"objects|{count}", False)
         for count in (1, 10, 100)]
        + [("100 messages made in the loop (the row up to 3072cb6)", "messages_made|100", "objects|100", False)]
        + [(f"{size // KIB} KiB arrays / Alltoallv (throughput)" if size < MIB else
            f"{size // MIB} MiB arrays / Alltoallv (throughput)", f"exchange|{size}", f"exchange|{size}", True)
           for size in (16 * KIB, 256 * KIB, 4 * MIB, 64 * MIB)]
        + [("empty superstep / raw Barrier (fork), Alltoall of counts (MPI)", "empty_superstep", None, False)])


# Each variant: its name and its environment (--variant adds others).
VARIANTS = {"pure": {"BSP_PURE_PYTHON": "1"}, "compiled": {"BSP_PURE_PYTHON": "0"}}


CHECKOUT = "PYBSP_CHECKOUT"      # a variant's key naming another checkout (--checkout), not an environment variable


def one_round(variant: dict, nprocs: int) -> tuple[dict, float]:
    """The medians of one run.py round on one variant, and the load average (1 min) before it."""
    load = os.getloadavg()[0]
    settings = dict(variant)
    root = Path(settings.pop(CHECKOUT, HERE.parent.parent))
    python = sys.executable if root == HERE.parent.parent else str(root / ".venv" / "bin" / "python")
    env = {**os.environ, **settings}
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch, "medians.json")
        subprocess.run([python, str(root / "scripts" / "benchmarks" / "run.py"), "--only", "tax", "--rounds", "1",
                        "--nprocs", str(nprocs), "--report", "", "--plots", "", "--scaling", "", "--json", str(out)],
                       env=env, check=True, stdout=subprocess.DEVNULL, cwd=root)
        return json.loads(out.read_text())["medians"], load


def ratios(medians: dict) -> dict:
    found = {}
    for row, key, raw_key, throughput in ROWS:
        for system in ("fork", "mpi"):
            if raw_key is None:
                raw = medians["raw|barrier"] if system == "fork" else medians["raw|alltoall_counts"]
            else:
                raw = medians[f"raw|{raw_key}"]
            if f"{system}|{key}" not in medians:
                continue        # a row that an earlier checkout's benchmark (--checkout) does not measure
            mine = medians[f"{system}|{key}"]
            found[f"{row}|{system}"] = raw / mine if throughput else mine / raw
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--nprocs", type=int, default=2)
    parser.add_argument("--json", help="write every round's medians and loads here")
    parser.add_argument("--variant", action="append", default=[],
                        help="NAME:VAR=VALUE,...: one more variant, for example nbx:BSP_MPI_DENSE_RANKS=0")
    parser.add_argument("--checkout", action="append", default=[],
                        help="NAME:PATH: the compiled build of another checkout, with its own .venv")
    options = parser.parse_args()
    variants = dict(VARIANTS)
    for text in options.checkout:
        name, _, path = text.partition(":")
        variants[name] = {"BSP_PURE_PYTHON": "0", CHECKOUT: str(Path(path).resolve())}
    for text in options.variant:
        name, _, settings = text.partition(":")
        variants[name] = dict(setting.split("=", 1) for setting in settings.split(",") if setting)
    rounds: dict[str, list] = {name: [] for name in variants}
    for number in range(options.rounds):
        for name, variant in variants.items():
            print(f"round {number + 1} of {options.rounds}: {name}", file=sys.stderr)
            rounds[name].append(one_round(variant, options.nprocs))
    if options.json:
        Path(options.json).write_text(json.dumps(rounds, indent=1))
    report(rounds, variants, options.nprocs)


def report(rounds: dict, variants: dict, nprocs: int) -> None:
    """Print the table of `rounds` (as --json writes them)."""
    loads = [load for build in rounds.values() for _, load in build]
    print(f"nprocs {nprocs}, {len(next(iter(rounds.values())))} interleaved rounds per build, load average (1 min) "
          f"{min(loads):.1f} to {max(loads):.1f} before the rounds\n")
    print("| superstep | " + " | ".join(f"{name}: {system}" for name in variants for system in ("fork", "MPI"))
          + " |")
    print("|---|" + "---|" * (2 * len(variants)))
    per_build = {build: [ratios(medians) for medians, _ in found] for build, found in rounds.items()}
    for row, *_ in ROWS:
        cells = []
        for build in variants:
            for system in ("fork", "mpi"):
                values = [found[f"{row}|{system}"] for found in per_build[build] if f"{row}|{system}" in found]
                cells.append(f"{statistics.median(values):.2f}x ({min(values):.2f}-{max(values):.2f})" if values
                             else "-")
        print(f"| {row} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main()
