"""The coarray part of the benchmark: element puts and gets against
`world.send` and against mpi4py's one-sided Win.Put / Win.Get in a fence;
the 64 MiB exchange with unbuffered sends (copy=False) against raw
Alltoallv; examples/bspbench.py's g and l beside `bsp bench`'s.

`plan` adds its workloads to run.py's; `tables` and `targets` add to the
report.  `scripts/bench --only coarrays` measures this part alone."""

from __future__ import annotations

import programs

MIB = 1 << 20
ELEMENTS = 1000                 # one-element calls per superstep
HOWS = {"send": "`world.send(x, dest)`", "setitem": "`xs[dest, i] = x`", "put": "`xs.put(x, dest, i)`",
        "get": "`xs[dest, i]` (a get)"}
BIG = 64 * MIB


def plan(quick: bool, alone: bool) -> dict:
    """What to measure (see run.plan); `alone`: without the rest of the
    benchmark, whose plan measures the copying 64 MiB exchange already."""
    repetitions = 10 if quick else 40
    exchanges = 3 if quick else 5
    maxh, niters = (32, 10) if quick else (128, 40)
    work = {
        "raw": [("one_sided", "one_sided", [ELEMENTS, repetitions])],
        "bsp": [("elements", "element_calls", [ELEMENTS, repetitions]),
                (f"exchange_unbuffered|{BIG}", "exchange", [BIG, exchanges, False]),
                  ("bspbench", "bspbench", [maxh, niters])],
    }
    if alone:
        work["raw"].append((f"exchange|{BIG}", "alltoallv", [BIG, exchanges]))
        work["bsp"].append((f"exchange|{BIG}", "exchange", [BIG, exchanges]))
    return work


def tables(get, nprocs: int, scaled: dict | None) -> list[str]:
    return _elements_table(get) + _unbuffered_table(get, nprocs) + _bspbench_table(get, nprocs, scaled)


def _element(get, system: str, how: str) -> float:
    """Seconds per call (see programs.element_calls and raw_mpi.one_sided)."""
    if system == "raw":
        return get("raw", "one_sided")[("put", "get").index(how)]
    return get(system, "elements")[programs.ELEMENT_CALLS.index(how)]


def _elements_table(get) -> list[str]:
    send = {system: _element(get, system, "send") for system in ("fork", "mpi")}
    raw = {how: _element(get, "raw", how) for how in ("put", "get")}
    lines = ["## Coarrays: element puts and gets", "",
             f"{ELEMENTS:,} one-element calls to the next rank in a superstep, microseconds per call, the "
             "superstep's sync (and reading what arrived) included; raw: mpi4py `Win.Put` / `Win.Get` of one "
             f"double, {ELEMENTS:,} between two `Fence`s (lower is better):", "",
             "| call | fork (us) | MPI (us) | fork / send | MPI / send | MPI / raw Win |", "|---|---|---|---|---|---|"]
    for how, label in HOWS.items():
        fork, mpi = _element(get, "fork", how), _element(get, "mpi", how)
        versus = raw["get" if how == "get" else "put"]
        lines.append(f"| {label} | {fork * 1e6:.2f} | {mpi * 1e6:.2f} | {fork / send['fork']:.2f} | "
                     f"{mpi / send['mpi']:.2f} | {'' if how == 'send' else f'{mpi / versus:.2f}'} |")
    for how, label in (("put", "raw mpi4py `Win.Put` in a fence"), ("get", "raw mpi4py `Win.Get` in a fence")):
        lines.append(f"| {label} | | {raw[how] * 1e6:.2f} | | {raw[how] / send['mpi']:.2f} | 1.00 |")
    return lines + [""]


def _unbuffered_table(get, nprocs: int) -> list[str]:
    raw = get("raw", f"exchange|{BIG}")
    sent = BIG * (nprocs - 1)
    lines = ["## Unbuffered sends", "",
             f"Every rank sends {BIG // MIB} MiB to every other rank: `world.send(array, dest)` (a copy is "
             "captured at the call) and `world.send(array, dest, copy=False)` (BSPlib's hpput: MPI sends from "
             "the array itself; fork writes it once into shared memory at the sync); milliseconds per superstep "
             "and throughput against raw `Alltoallv` (higher is better):", "",
             "| system | time (ms) | GB/s | / raw Alltoallv |", "|---|---|---|---|",
             f"| raw mpi4py Alltoallv | {raw * 1e3:.1f} | {sent / raw / 1e9:.2f} | 1.00 |"]
    for system, name in (("fork", "fork backend"), ("mpi", "MPI backend")):
        for key, how in ((f"exchange|{BIG}", "send"), (f"exchange_unbuffered|{BIG}", "send, copy=False")):
            seconds = get(system, key)
            lines.append(f"| {name}, {how} | {seconds * 1e3:.1f} | {sent / seconds / 1e9:.2f} | {raw / seconds:.2f} |")
    return lines + [""]


def _bspbench_table(get, nprocs: int, scaled: dict | None) -> list[str]:
    lines = ["## bspbench beside bsp bench", "",
             "`examples/bspbench.py` (Bisseling's bspbench: h-relations of single-double puts, "
             "`dest[pid, i] = x`, fitted over h = p..MAXH) and `bsp bench` (h-relations of large arrays, one "
             "send per destination, see bsp.machine); g per 8-byte word, in microseconds and in flops "
             "(times r, bspbench's computing rate, numpy DAXPY of length 1024):", "",
             "| backend | r (Mflop/s) | bspbench g (us/word) | bspbench g (flop/word) | bspbench l (us) "
             "| bspbench l (flop) | bsp bench g (us/word) | bsp bench l (us) |", "|---|---|---|---|---|---|---|---|"]
    for system, name in (("fork", "fork"), ("mpi", "MPI")):
        r, g, l = get(system, "bspbench")
        machine = (scaled or {}).get(system, {}).get(nprocs)
        bench = (f"{machine['g'] * 8 * 1e6:.4f} | {machine['l'] * 1e6:.1f}" if machine else "| ")
        lines.append(f"| {name} | {r / 1e6:.0f} | {g * 1e6:.3f} | {g * r:.0f} | {l * 1e6:.1f} | {l * r:.0f} "
                     f"| {bench} |")
    return lines + [""]


def targets(get) -> list[tuple[str, float, str, float]]:
    """(name, measured ratio, relation, bound) for the targets table."""
    rows = []
    for system, name in (("fork", "fork"), ("mpi", "MPI")):
        send = _element(get, system, "send")
        rows += [(f"{name}: xs[dest, i] = x <= 1.5x world.send of a float",
                  _element(get, system, "setitem") / send, "<=", 1.5),
                 (f"{name}: xs.put(x, dest, i) <= 1.5x world.send", _element(get, system, "put") / send, "<=", 1.5),
                 (f"{name}: one-element get <= 2x world.send", _element(get, system, "get") / send, "<=", 2.0)]
    rows.append(("MPI: 64 MiB exchange with copy=False >= 0.9x raw Alltoallv",
                 get("raw", f"exchange|{BIG}") / get("mpi", f"exchange_unbuffered|{BIG}"), ">=", 0.9))
    return rows
