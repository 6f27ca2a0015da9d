"""pybsp: bulk-synchronous parallel programming for Python.

    import bsp

    def program(world, n):
        world.send(world.pid * n, (world.pid + 1) % world.nprocs)
        world.sync()
        return world.messages()

    print(bsp.run(program, 10, nprocs=4))

See README.md for the programming model and the backends.
"""

import bsp.compiled     # first: which build of the engine layer runs (compiled or pure Python)
from bsp.platforms import check_platform

check_platform()        # before anything that needs POSIX is imported

from bsp.objects.coarray import Coarray
from bsp.arrays.distarray import DistArray
from bsp.errors import (BSPError, CheckpointError, RankDiedError, RemoteError, ReplayDivergence,
                        RunTimeoutError, SyncMismatchError, SyncTimeoutError)
from bsp.objects.future import Future
from bsp.objects.grid import Grid
from bsp.objects.group import Group
from bsp.launch.bsp_run import available_processors, run
from bsp.notebook import load_ipython_extension
from bsp.objects.queue import Queue
from bsp.recordings.replay import replay
from bsp.objects.var import Var
from bsp.world import World
from bsp import machine, pregel
from bsp.observe import logs, profile, timeline, trace

# The README's spellings of the observing modules (`import bsp.profile`,
# `bsp.logs.configure()`), which live in bsp.observe.
import sys as _sys
for _module in (logs, profile, timeline, trace):
    _sys.modules[f"bsp.{_module.__name__.rsplit('.', 1)[1]}"] = _module

__all__ = [
    "BSPError", "CheckpointError", "Coarray", "DistArray", "Future", "Grid", "Group", "Queue", "RankDiedError",
    "RemoteError", "ReplayDivergence", "RunTimeoutError", "SyncMismatchError", "SyncTimeoutError", "Var", "World",
    "available_processors", "load_ipython_extension", "replay", "run",
]
from bsp.version import __version__
