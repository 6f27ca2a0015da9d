"""pybsp: bulk-synchronous parallel programming for Python.

    import bsp

    def program(world, n):
        world.send(world.pid * n, (world.pid + 1) % world.nprocs)
        world.sync()
        return world.messages()

    print(bsp.run(program, 10, nprocs=4))

See README.md for the programming model and the backends.
"""

from .errors import BSPError, RankDiedError, RemoteError, RunTimeoutError, SyncMismatchError
from .launch import run
from .queue import Queue
from .world import World

__all__ = [
    "BSPError", "Queue", "RankDiedError", "RemoteError", "RunTimeoutError",
    "SyncMismatchError", "World", "run",
]
__version__ = "0.1.0"
