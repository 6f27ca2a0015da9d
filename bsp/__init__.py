"""pybsp: bulk-synchronous parallel programming for Python.

    import bsp

    def program(world, n):
        world.send(world.pid * n, (world.pid + 1) % world.nprocs)
        world.sync()
        return world.messages()

    print(bsp.run(program, 10, nprocs=4))

See README.md for the programming model and the backends.
"""

from .platforms import check_platform

check_platform()        # before anything that needs POSIX is imported

from .coarray import Coarray
from .distarray import DistArray
from .errors import (BSPError, CheckpointError, RankDiedError, RemoteError, ReplayDivergence,
                     RunTimeoutError, SyncMismatchError, SyncTimeoutError)
from .future import Future
from .grid import Grid
from .group import Group
from .launch import available_processors, run
from .notebook import load_ipython_extension
from .queue import Queue
from .replay import replay
from .var import Var
from .world import World
from . import logs, machine, pregel, profile, timeline, trace     # as the README writes them: bsp.pregel.Graph, ...

__all__ = [
    "BSPError", "CheckpointError", "Coarray", "DistArray", "Future", "Grid", "Group", "Queue", "RankDiedError",
    "RemoteError", "ReplayDivergence", "RunTimeoutError", "SyncMismatchError", "SyncTimeoutError", "Var", "World",
    "available_processors", "load_ipython_extension", "replay", "run",
]
from .version import __version__
