"""The BSP machine parameters r, g and l, measured as Bisseling's bspbench
measures them, and saved as JSON for the cost model (see `bsp.observe.bspbench`,
where the benchmark and the fit live).

    from bsp.machine import measure
    params = measure(nprocs=4)          # runs the benchmark with bsp.run
    params.save("machine.json")         # what `bsp bench --out` writes

The cost of a program is then predicted as
T = sum over supersteps of (w_max + g*h_max + l), w in seconds (flops / r).
"""

from __future__ import annotations

from bsp.observe.bspbench import DEFAULT_SIZES, MachineParameters, fit, measure_with
from bsp.launch.bsp_run import choose_backend, run

__all__ = ["DEFAULT_SIZES", "MachineParameters", "fit", "measure"]


def measure(nprocs: int | None = None, backend: str | None = None, sizes: tuple[int, ...] = DEFAULT_SIZES,
            repetitions: int = 200) -> MachineParameters:
    """Measure r, g and l with `nprocs` ranks on `backend` (bsp.run's
    defaults).  Costs up to `repetitions` supersteps per size (fewer for
    large sizes, at most 64 MiB of traffic per size and rank)."""
    return measure_with(run, nprocs, choose_backend(backend), sizes, repetitions)
