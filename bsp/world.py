"""`World`: what a BSP program sees of the parallel machine."""

from __future__ import annotations

from typing import Any, NoReturn, Protocol

import numpy as np

from bsp.objects import group
from bsp.objects.coarray import Coarray
from bsp.objects.collectives import Collectives, world_team
from bsp.core.engine import DEFAULT_QUEUE_CHANNEL, Engine
from bsp.objects.grid import Grid
from bsp.objects.group import Group
from bsp.objects.queue import Queue
from bsp.core.sync_record import Kind
from bsp.objects.var import Var


class Checkpointing(Protocol):
    """What `World.save` and `World.restore` do, given to the World by
    whoever makes it (bsp.checkpoint.world_checkpoints: files in the run's checkpoint
    directory), so that World, below the checkpoints, imports none of them."""

    def save(self, world: "World", state: dict[str, Any]) -> None: ...

    def restore(self, world: "World", distribution: Any, grid: Any) -> dict[str, Any] | None: ...


class World(Collectives):
    """One rank's view of a BSP run, passed as the first argument of the
    program.

    A program is a sequence of supersteps.  Within a superstep a rank
    computes and queues communication (`send`, queue sends, puts, gets);
    `sync()` ends the superstep on every rank and delivers everything queued,
    at once.  Each collective is a superstep of its own.  Every rank must make
    the same sequence of sync and collective calls and create the same data
    objects: a rank that diverges raises SyncMismatchError on every rank.

    The collectives (broadcast, reduce, allreduce, gather, allgather,
    scatter, alltoall, scan: [`broadcast`][bsp.World.broadcast] and the
    others below) are one superstep each, which every rank must call.
    """

    def __init__(self, engine: Engine, checkpointing: Checkpointing):
        self._engine = engine
        self._checkpointing = checkpointing
        self._team = world_team(engine)
        self._default_queue = Queue(engine, DEFAULT_QUEUE_CHANNEL)
        self.send = self._default_queue.send     # type: ignore[method-assign]  # compiled: see Queue
        self.messages = self._default_queue.messages     # type: ignore[method-assign]  # one call, not two
        self._checkpoints: Any = None   # set by bsp.checkpoint.save in a run with a checkpoint directory

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

    @property
    def engine(self) -> Engine:
        """The superstep engine under this World, for data objects built on
        World (DistArray, checkpoints): they queue traffic and end supersteps
        through its public calls (see bsp.core.engine.Engine and
        bsp.objects.collectives.superstep)."""
        return self._engine

    # -- messages -----------------------------------------------------------

    def send(self, obj: Any, dest: int, copy: bool = True) -> None:
        """Queue a copy of `obj` for rank `dest` (itself included), delivered
        at the next sync.  No superstep of its own.  `copy=False` (BSPlib's
        hpput): `obj` is a buffer such as a numpy array, not copied now, that
        the caller must not change before the next sync (see Queue.send).
        Raises ValueError for a dest outside 0..nprocs-1, TypeError for an
        object that neither pickle nor dill can serialize, or, with
        copy=False, for one that is not a buffer."""
        self._default_queue.send(obj, dest, copy)

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
        """A value on every rank, starting as `value` here (see [`bsp.Var`][]).
        Collective: every rank creates the same data objects in the same
        order."""
        return Var(self._engine, value)

    def coarray(self, shape_or_array: Any, dtype: Any = float) -> Coarray:
        """A numpy array on every rank (see [`bsp.Coarray`][]), of one dtype
        and number of dimensions on every rank; its shape may differ from
        rank to rank (`shape_of(pid)`, known from the sync after the
        creation on; an empty image is fine).  `coarray(n, dtype)` or
        `coarray(shape, dtype)` starts as zeros; `coarray(array)` makes
        `array` this rank's image (no copy).  Collective, but no superstep
        of its own: every rank creates the same data objects, of the same
        dtype and ndim, in the same order (SyncMismatchError at the next
        sync otherwise); the shapes travel with that sync (h = p-1 small
        messages).  Raises TypeError for a dtype of Python objects."""
        if isinstance(shape_or_array, np.ndarray):
            local = shape_or_array
        else:
            local = np.zeros(shape_or_array, dtype)
        return Coarray(self._engine, local)

    def queue(self) -> Queue:
        """A new message queue, independent of the others.  Collective:
        every rank creates the same queues in the same order."""
        return Queue(self._engine, self._engine.create_object("queue"))

    # -- groups and grids ---------------------------------------------------

    def split(self, color: Any, key: int | None = None) -> Group:
        """This rank's Group: the ranks that pass the same `color` (any
        hashable value equal to itself, an int or a str, say), ordered by
        (`key`, world pid); a key of None counts as the world pid, so
        split(color) keeps the world's order.  Collective, one superstep
        (an allgather of the colors and keys: h = (p-1)*size).  Raises
        TypeError for an unhashable color or a key that is not an integer."""
        return group.split(self._engine, color, key)

    def grid(self, shape: Any) -> Grid:
        """The ranks as a processor grid of `shape` (a tuple of positive
        ints that multiply to nprocs), row-major in pid: see [`bsp.Grid`][].
        No superstep: every rank computes the grid from the shape, but must
        make the same grids in the same order, as with other data objects.
        Raises ValueError naming the shape and nprocs when they disagree."""
        return Grid(self._engine, shape)

    # -- checkpoints (bsp.checkpoint.save) ----------------------------------------

    def save(self, **state: Any) -> None:
        """Save `state` as the run's checkpoint, if it has a directory
        (bsp.run's checkpoint option, `bsp run --checkpoint DIR`).
        Collective: every rank calls it, with the same names.  One
        superstep: every rank writes its own part (DistArrays: the local
        block, raw; other values: pickled, numpy data raw), syncs it to
        disk, and rank 0 commits the checkpoint, replacing the previous one
        atomically, before its save returns: a crash before that (of any
        rank, or of the launching process) leaves the previous one whole.
        A value that is equal on every rank (compared by its pickle) can be
        restored on any number of ranks; one that differs, only on as many
        as saved it.  Without a checkpoint directory it writes nothing, but
        is still the superstep, with the same checks.  Raises TypeError for
        a value that cannot be pickled or a DistArray of Python objects,
        CheckpointError when the directory cannot be written."""
        self._checkpointing.save(self, state)

    def restore(self, distribution: Any = None, grid: Any = None) -> dict[str, Any] | None:
        """The state of the run's last committed checkpoint, as a dict of
        what `save` was given, or None on a fresh start (an empty or new
        directory, or no checkpoint directory: then no superstep either).
        Collective, two supersteps; each rank reads what it holds from the
        files, nothing is sent.  DistArrays come back split over this run's
        ranks, in their saved distribution (on another number of ranks,
        with the grid chosen afresh), or in the one `distribution`
        ({name: distribution}) and `grid` ({name: grid}) ask for.  Raises
        CheckpointError (on every rank) for a missing, truncated or
        damaged file, and for values that differed from rank to rank when
        this run has another number of ranks; ValueError for a name in
        `distribution` or `grid` that is not a saved DistArray."""
        return self._checkpointing.restore(self, distribution, grid)
