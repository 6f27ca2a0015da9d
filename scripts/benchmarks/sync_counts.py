"""Control traffic of a superstep, counted on the wire (issue 15, item 6).

Runs MPI jobs of p ranks with MPICH's shared memory off, so that every
message between ranks goes through a TCP socket (MPIR_CVAR_NOLOCAL=1, the
ofi netmod, libfabric's tcp provider), under `strace -f`, and counts the
socket send calls (sendto, sendmsg, writev) and the bytes they carry.  A job
of S supersteps minus a job of none, divided by S and p, is what one
superstep costs one rank on average, MPI's own headers included.

Two supersteps: "empty" (a sync with no traffic) and "sparse" (every rank
sends one float to each of its two neighbours, pid +- 1 mod p).  The data of
the sparse one is 2 messages of ~100 bytes per rank; the rest is control.

    .venv/bin/python scripts/benchmarks/sync_counts.py [--nprocs 2,4,8,16,32,64]
        [--supersteps 200] [--revision REV]   (REV: the code to count instead of
        this checkout's, e.g. the commit before the sparse sync, e8d9879)

Prints a markdown table.  These are counts, not times: oversubscribed is fine.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
PROGRAM = """
import sys, bsp
supersteps, mode = int(sys.argv[1]), sys.argv[2]
def program(world):
    p, pid = world.nprocs, world.pid
    dests = [] if mode == "empty" else [(pid + 1) % p, (pid - 1) % p]
    for _ in range(supersteps):
        for dest in dests:
            world.send(1.5, dest)
        world.sync()
bsp.run(program, backend="mpi")
"""
# a completed call, or the end of one that strace shows as unfinished, then resumed
_SENT = re.compile(r"^\d+\s+(?:<\.\.\. )?(sendto|sendmsg|writev)(?:\(| resumed>).*\)\s+=\s+(\d+)\s*$", re.M)
TCP = {"MPIR_CVAR_NOLOCAL": "1", "MPIR_CVAR_CH4_NETMOD": "ofi", "FI_PROVIDER": "tcp", "PYTHONHASHSEED": "0"}


def traced(nprocs: int, supersteps: int, mode: str, source: Path, work: Path) -> tuple[int, int]:
    """(send calls, bytes sent) by every process of one job, under strace."""
    script, log = work / "program.py", work / f"strace-{nprocs}-{supersteps}-{mode}.log"
    script.write_text(PROGRAM)
    environment = {**os.environ, **TCP, "PYTHONPATH": str(source)}
    command = ["strace", "-f", "--seccomp-bpf", "-qq", "-s", "0", "-e", "trace=sendto,sendmsg,writev", "-o", str(log),
               str(BIN / "mpiexec"), "-n", str(nprocs), sys.executable, str(script), str(supersteps), mode]
    subprocess.run(command, env=environment, check=True, timeout=1800, capture_output=True)
    sent = [int(size) for _, size in _SENT.findall(log.read_text())]
    log.unlink()
    return len(sent), sum(sent)


def per_superstep(nprocs: int, supersteps: int, source: Path, work: Path) -> dict[str, tuple[float, float]]:
    base = traced(nprocs, 0, "empty", source, work)
    found = {}
    for mode in ("empty", "sparse"):
        calls, nbytes = traced(nprocs, supersteps, mode, source, work)
        scale = supersteps * nprocs
        found[mode] = ((calls - base[0]) / scale, (nbytes - base[1]) / scale)
    return found


def export(revision: str, work: Path) -> Path:
    """The bsp and mpi_backend packages of `revision`, in a folder of their own."""
    target = work / "source"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(ROOT), "archive", revision, "bsp", "mpi_backend"],
                             check=True, capture_output=True).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--nprocs", default="2,4,8,16,32,64")
    parser.add_argument("--supersteps", type=int, default=200)
    parser.add_argument("--revision", help="count this git revision's code instead of the checkout's")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        work = Path(folder)
        source = export(options.revision, work) if options.revision else ROOT
        print(f"Code: {options.revision or 'this checkout'}; {options.supersteps} supersteps; "
              "per rank per superstep, on the wire (TCP), MPI's headers included.\n")
        print("| p | empty: messages | empty: bytes | sparse: messages | sparse: bytes |")
        print("|---|---|---|---|---|")
        for nprocs in [int(n) for n in options.nprocs.split(",")]:
            found = per_superstep(nprocs, options.supersteps, source, work)
            (em, eb), (sm, sb) = found["empty"], found["sparse"]
            print(f"| {nprocs} | {em:.1f} | {eb:.0f} | {sm:.1f} | {sb:.0f} |", flush=True)


if __name__ == "__main__":
    main()
