"""The heat equation of stencil.py, with checkpoints: kill it, run the same
command again, and it carries on from its last checkpoint, on as many ranks
as you like this time, with the same result to the last bit.

Every `every` steps the program saves the plate (a DistArray) and the step
count with `world.save`, one superstep; at its start, `world.restore()`
gives back the last checkpoint, the plate split over this run's ranks, or
None on a fresh start.  Without a checkpoint directory, save writes nothing
and restore returns None: the program runs from the start, as stencil.py.

    bsp run -n 4 --checkpoint ck examples/stencil_checkpoint.py [n] [steps] [every]

(defaults: 200 x 200, 300 steps, a checkpoint every 50).  BSP cost per step
as stencil.py: 1 superstep, h = 2 rows of n floats; per checkpoint, one
superstep that writes the rank's n/p rows.
"""

import sys

import numpy as np

import bsp
from bsp import DistArray
from stencil import initial, serial, step


def heat(world: bsp.World, n: int, steps: int, every: int) -> np.ndarray | None:
    state = world.restore()
    if state is None:
        u, done = DistArray.from_function(world, (n, n), lambda rows: initial(rows, n)), 0
    else:
        u, done = state["plate"], state["step"]
        if world.pid == 0:
            print(f"resuming at step {done} on {world.nprocs} ranks", file=sys.stderr)
    for k in range(done, steps):
        extended = u.halo(1, fill=0.0)          # zero rows beyond the top and bottom edges
        u.local = step(u.local, extended[:1], extended[-1:])
        if (k + 1) % every == 0:
            world.save(plate=u, step=k + 1)
    return u.gather(root=0)


if __name__ == "__main__":
    n = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    steps = int(sys.argv[2]) if len(sys.argv) > 2 else 300
    every = int(sys.argv[3]) if len(sys.argv) > 3 else 50
    plate = bsp.run(heat, n, steps, every)[0]
    expected = serial(n, steps)
    print(f"heat equation, {n} x {n} grid, {steps} steps, a checkpoint every {every}")
    print(f"heat left on the plate: {plate.sum():.10f} (serial: {expected.sum():.10f})")
    ok = np.array_equal(plate, expected)
    print(f"check against the serial answer: {'OK' if ok else 'FAILED'}")
    raise SystemExit(0 if ok else 1)
