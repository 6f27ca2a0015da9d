"""`World`: what a BSP program sees of the parallel machine."""

from __future__ import annotations

import operator
from typing import Any, Callable, NoReturn, Sequence

import numpy as np

from . import collectives
from .coarray import Coarray
from .engine import DEFAULT_QUEUE_CHANNEL, Engine
from .queue import Queue
from .record import Kind
from .var import Var


class World:
    """One rank's view of a BSP run, passed as the first argument of the
    program.

    A program is a sequence of supersteps.  Within a superstep a rank
    computes and queues communication (`send`, queue sends, puts, gets);
    `sync()` ends the superstep on every rank and delivers everything queued,
    at once.  Each collective is a superstep of its own.  Every rank must make
    the same sequence of sync and collective calls and create the same data
    objects: a rank that diverges raises SyncMismatchError on every rank.
    """

    def __init__(self, engine: Engine):
        self._engine = engine
        self._default_queue = Queue(engine, DEFAULT_QUEUE_CHANNEL)

    def __reduce__(self) -> NoReturn:
        raise TypeError("a World cannot be sent or pickled: it is one rank's handle on the run")

    def __repr__(self) -> str:
        return f"<bsp.World pid={self.pid} nprocs={self.nprocs} superstep={self.superstep}>"

    @property
    def pid(self) -> int:
        """This rank, 0..nprocs-1."""
        return self._engine.pid

    @property
    def nprocs(self) -> int:
        """The number of ranks."""
        return self._engine.nprocs

    @property
    def superstep(self) -> int:
        """The number of supersteps completed so far."""
        return self._engine.superstep

    # -- messages -----------------------------------------------------------

    def send(self, obj: Any, dest: int) -> None:
        """Queue a copy of `obj` for rank `dest` (itself included), delivered
        at the next sync.  No superstep of its own.  Raises ValueError for a
        dest outside 0..nprocs-1, TypeError for an object that neither pickle
        nor dill can serialize."""
        self._default_queue.send(obj, dest)

    def sync(self) -> None:
        """End the superstep: wait for every rank and deliver everything
        queued.  Cost: l + g*h, h the most bytes any rank sends or receives.
        Raises RemoteError if another rank failed, SyncMismatchError if
        another rank called something else."""
        self._engine.exchange(Kind.SYNC)

    def messages(self) -> list[tuple[int, Any]]:
        """What `send` delivered at the last sync (or collective): a list of
        `(source, obj)`, ordered by source pid, then send order."""
        return self._default_queue.messages()

    def var(self, value: Any = None) -> Var:
        """A value on every rank, starting as `value` here (see bsp.Var).
        Collective: every rank creates the same data objects in the same
        order."""
        return Var(self._engine, value)

    def coarray(self, shape_or_array: Any, dtype: Any = float) -> Coarray:
        """A numpy array on every rank, of the same shape and dtype (see
        bsp.Coarray): `coarray(n, dtype)` or `coarray(shape, dtype)` starts
        as zeros; `coarray(array)` makes `array` this rank's image (no copy).
        Collective."""
        if isinstance(shape_or_array, np.ndarray):
            local = shape_or_array
        else:
            local = np.zeros(shape_or_array, dtype)
        return Coarray(self._engine, local)

    def queue(self) -> Queue:
        """A new message queue, independent of the others.  Collective:
        every rank creates the same queues in the same order."""
        return Queue(self._engine, self._engine.create_object("queue"))

    # -- collectives (one superstep each; every rank must call them) --------

    def broadcast(self, obj: Any = None, root: int = 0) -> Any:
        """The root's `obj` on every rank.  h = (p-1)*size at the root."""
        return collectives.broadcast(self._engine, obj, root)

    def reduce(self, value: Any, op: Callable[[Any, Any], Any] = operator.add, root: int = 0) -> Any:
        """Fold of every rank's value in pid order, on the root; None
        elsewhere.  `op` is any associative callable (numpy ufuncs work
        elementwise).  h = (p-1)*size at the root."""
        return collectives.reduce(self._engine, value, op, root)

    def allreduce(self, value: Any, op: Callable[[Any, Any], Any] = operator.add) -> Any:
        """Fold of every rank's value in pid order, on every rank.
        h = (p-1)*size."""
        return collectives.allreduce(self._engine, value, op)

    def gather(self, obj: Any, root: int = 0) -> list[Any] | None:
        """List of every rank's obj, in pid order, on the root; None
        elsewhere.  h = (p-1)*size at the root."""
        return collectives.gather(self._engine, obj, root)

    def allgather(self, obj: Any) -> list[Any]:
        """List of every rank's obj, in pid order, on every rank.
        h = (p-1)*size."""
        return collectives.allgather(self._engine, obj)

    def scatter(self, objs: Sequence[Any] | None = None, root: int = 0) -> Any:
        """Rank i gets `objs[i]` of the root; `objs` is ignored elsewhere.
        h = (p-1)*size at the root."""
        return collectives.scatter(self._engine, objs, root)

    def alltoall(self, objs: Sequence[Any]) -> list[Any]:
        """Send `objs[j]` to rank j; get the list of what each rank sent
        here, in pid order.  h = (p-1)*size."""
        return collectives.alltoall(self._engine, objs)

    def scan(self, value: Any, op: Callable[[Any, Any], Any] = operator.add) -> Any:
        """Inclusive prefix fold: rank i gets op over the values of ranks
        0..i, in pid order.  h = (p-1)*size on rank 0."""
        return collectives.scan(self._engine, value, op)
