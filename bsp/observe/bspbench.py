"""The BSP machine parameters r, g and l, measured as Bisseling's bspbench
measures them, and saved as JSON for the cost model.  `measure_with` runs the
benchmark with the `bsp.run` it is given (`bsp.machine.measure` gives it
bsp.run itself: this module sits below the launcher).

- r: the computing rate of one rank, in flop/s, timing a numpy kernel
  (y += a*x on vectors that fit in cache, 2 flops per element);
- g: seconds per byte of an h-relation, and l: seconds per sync, from timing
  supersteps in which every rank sends h bytes (spread evenly over the other
  ranks, or to itself when alone) for growing h, and fitting
  T(h) = l + g*h by least squares (see `fit`: l is the fixed cost of a
  superstep that carries data).

The cost of a program is then predicted as
T = sum over supersteps of (w_max + g*h_max + l), w in seconds (flops / r).
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import numpy as np

from bsp.base.atomic_files import write_bytes_atomically

if TYPE_CHECKING:
    from bsp.world import World

# h from 0 to 4 MiB per rank: the small ones pin down l, the large ones g.
DEFAULT_SIZES = (0, 64, 512, 4 << 10, 32 << 10, 128 << 10, 512 << 10, 1 << 20, 2 << 20, 4 << 20)
_KERNEL_LENGTH = 1 << 12


@dataclass
class MachineParameters:
    """What `measure` found.  `points` are the (h in bytes, median seconds)
    pairs the fit was made from."""

    r: float                    # flop/s of one rank
    g: float                    # seconds per byte
    l: float                    # seconds per sync
    nprocs: int
    backend: str
    machine: str = ""
    measured: str = ""
    points: list[tuple[int, float]] = field(default_factory=list)

    def save(self, path: str) -> None:
        """Write the parameters to `path` as JSON (atomically, see bsp.base.atomic_files)."""
        write_bytes_atomically(path, json.dumps(asdict(self), indent=1).encode())

    @classmethod
    def load(cls, path: str) -> "MachineParameters":
        """Read parameters saved by `save` (or `bsp bench --out`).  Raises
        ValueError naming what is missing from a file that is not one."""
        with open(path) as source:
            data: dict[str, Any] = json.load(source)
        missing = [name for name in ("r", "g", "l", "nprocs", "backend") if name not in data]
        if missing:
            raise ValueError(f"{path} holds no BSP machine parameters: it lacks {', '.join(missing)}")
        data["points"] = [tuple(point) for point in data.get("points", [])]
        return cls(**data)

    def describe(self) -> str:
        return (f"r = {self.r / 1e9:.3g} Gflop/s, g = {self.g * 1e9:.3g} ns/byte "
                f"({self.g * self.r:.3g} flop/byte), l = {self.l * 1e6:.3g} us ({self.l * self.r:.3g} flop), "
                f"{self.backend} backend, nprocs = {self.nprocs}")


def measure_with(run: Callable[..., list[Any]], nprocs: int | None, backend: str,
                 sizes: tuple[int, ...] = DEFAULT_SIZES, repetitions: int = 200) -> MachineParameters:
    """Measure r, g and l with `run` (bsp.run), `nprocs` ranks on `backend`
    ("fork" or "mpi").  Costs up to `repetitions` supersteps per size
    (fewer for large sizes, at most 64 MiB of traffic per size and rank)."""
    rate, points, used = run(_benchmark, list(sizes), repetitions, nprocs=nprocs, backend=backend,
                             checkpoint=False)[0]
    g, l = fit(points)
    return MachineParameters(r=rate, g=g, l=l, nprocs=used, backend=backend,
                             machine=_machine(), measured=time.strftime("%Y-%m-%d %H:%M:%S"), points=points)


def fit(points: list[tuple[int, float]]) -> tuple[float, float]:
    """Least-squares g and l of T(h) = l + g*h (neither below zero).

    Two choices make l the fixed cost of a superstep that carries data,
    which is what the supersteps of real programs are: the points of h = 0
    are left out when there are others (an empty sync skips the framing and
    costs a fraction of that), and each residual is weighted by 1/T, so
    that the times of small h, which are what l is, count as much as those
    of large h, whose absolute noise would otherwise swamp l."""
    carrying = [point for point in points if point[0] > 0]
    if len({h for h, _ in carrying}) >= 2:
        points = carrying
    h = np.array([point[0] for point in points], float)
    seconds = np.array([point[1] for point in points], float)
    if len(set(h.tolist())) < 2:
        return 0.0, max(float(seconds.mean()), 0.0)
    g, l = np.polyfit(h, seconds, 1, w=1 / np.maximum(seconds, 1e-12))
    return max(float(g), 0.0), max(float(l), 0.0)


def _benchmark(world: World, sizes: list[int], repetitions: int) -> tuple[float, list[tuple[int, float]], int]:
    """On every rank: the kernel rate and the median superstep time per h;
    the slowest rank's view, as the superstep is only over when it is."""
    rate = _flop_rate()
    points = []
    others = [dest for dest in range(world.nprocs) if dest != world.pid] or [world.pid]
    for size in sizes:
        share = size // len(others)
        payload = np.ones(share, np.uint8)
        times = []
        for _ in range(max(10, min(repetitions, (64 << 20) // max(size, 1)))):
            world.sync()
            start = time.perf_counter()
            if share:
                for dest in others:
                    world.send(payload, dest)
            world.sync()
            world.messages()
            times.append(time.perf_counter() - start)
        points.append((share * len(others), float(np.median(times))))
    slowest = world.allreduce(np.array([seconds for _, seconds in points]), op=np.maximum)
    rates = world.allreduce(rate, op=min)
    return rates, [(h, float(seconds)) for (h, _), seconds in zip(points, slowest)], world.nprocs


def _flop_rate(seconds: float = 0.05) -> float:
    x = np.random.default_rng(1).random(_KERNEL_LENGTH)
    y = np.zeros(_KERNEL_LENGTH)
    rates = []
    for _ in range(5):
        count, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds / 5:
            y += 0.5 * x       # 2 flops per element (numpy does the multiply and the add)
            count += 1
        rates.append(2 * _KERNEL_LENGTH * count / (time.perf_counter() - start))
    return float(np.median(rates))


def _machine() -> str:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return f"{platform.node()} ({platform.machine()}, {cores} usable cores), Python {platform.python_version()}"
