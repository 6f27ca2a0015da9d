"""The catalogue of bad inputs: every public call made with wrong types and
values, the error it must raise, at the call, and the message that says
what was wrong.  tests/launch/test_bad_inputs.py checks every case on both
backends; tests/error_catalogue.py writes docs/errors.md from it.

`InRank` cases run inside a BSP program on 2 ranks: `setup` on every rank
(data objects are created collectively), `call` on rank 0 only, which must
raise.  `Outside` cases run in the launching process.
"""

from __future__ import annotations

import os
import socket
import threading
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

import bsp
from bsp import DistArray
from bsp.objects.grid import dims_create
from bsp.notebook import parse_options
from bsp.testing import spmd

NPROCS = 2


@dataclass
class InRank:
    what: str
    call: Callable[..., Any]                    # (world, made) -> raises
    error: type[BaseException]
    message: str                                # a regular expression the message must match
    setup: Callable[[bsp.World], Any] = lambda world: None


@dataclass
class Outside:
    what: str
    call: Callable[[], Any]
    error: type[BaseException]
    message: str
    mpi: bool = True                            # whether the case applies under MPI too


def _known(world: bsp.World, made: Any) -> Any:
    """A coarray after a sync: every rank's shape is known from then on."""
    world.sync()
    return made


def _deep_list(depth: int) -> list:
    nested: list = []
    for _ in range(depth):
        nested = [nested]
    return nested


def _from_another_thread(world: bsp.World) -> None:
    caught: list[BaseException] = []

    def send() -> None:
        try:
            world.send("from a thread", 0)
        except BaseException as error:       # noqa: BLE001 - handed back to the caller
            caught.append(error)

    thread = threading.Thread(target=send)
    thread.start()
    thread.join()
    raise caught[0]


def _after_return(world: bsp.World) -> None:
    """Run a tiny program on one rank of a fork run in this process and use
    its World after it returned."""
    from bsp.fork.barrier import make_barrier
    from bsp.fork.shared import SharedRegion
    from bsp.fork.transport import ForkTransport
    from bsp.launch.rank_runner import run_program

    region = SharedRegion(1)
    kept: list[bsp.World] = []
    try:
        run_program(ForkTransport(0, region, make_barrier(region, 1, 0.0)), lambda w: kept.append(w), (), {})
        kept[0].send("too late", 0)
    finally:
        kept.clear()


IN_RANK: list[InRank] = [
    InRank("send: dest out of range", lambda world, _: world.send("x", NPROCS), ValueError,
           r"dest 2 is out of range: pids run from 0 to 1 \(2 ranks\)"),
    InRank("send: negative dest", lambda world, _: world.send("x", -1), ValueError, r"dest -1 is out of range"),
    InRank("send: dest of the wrong type", lambda world, _: world.send("x", "1"), TypeError,
           r"dest must be an integer pid, not 'str'"),
    InRank("send: a float dest", lambda world, _: world.send("x", 1.0), TypeError,
           r"dest must be an integer pid, not 'float'"),
    InRank("send: a generator (neither pickle nor dill can carry it)",
           lambda world, _: world.send((x for x in []), 0), TypeError,
           r"cannot serialize a 'generator' object: cannot pickle 'generator' object"),
    InRank("send: a socket inside a list", lambda world, sock: world.send([1, sock], 0), TypeError,
           r"cannot serialize a 'list' object: cannot pickle 'socket' object",
           setup=lambda world: socket.socket()),
    InRank("send: a structure nested too deeply to serialize",
           lambda world, deep: world.send(deep, 0), ValueError,
           r"cannot serialize a 'list' object: it is nested too deeply",
           setup=lambda world: _deep_list(100_000)),
    InRank("send: the World itself", lambda world, _: world.send(world, 0), TypeError,
           r"a World cannot be sent or pickled"),
    InRank("queue send: dest out of range", lambda world, q: q.send(1, 5), ValueError, r"dest 5 is out of range",
           setup=lambda world: world.queue()),
    InRank("a World method from another thread", lambda world, _: _from_another_thread(world), bsp.BSPError,
           r"World methods must be called from the thread that runs the program"),
    InRank("a World used after its program returned", lambda world, _: _after_return(world), bsp.BSPError,
           r"this World's program has returned: its World can no longer communicate"),
    InRank("broadcast: root out of range", lambda world, _: world.broadcast(1, root=2), ValueError,
           r"root 2 is out of range"),
    InRank("reduce: root of the wrong type", lambda world, _: world.reduce(1, root="0"), TypeError,
           r"root must be an integer pid, not 'str'"),
    InRank("allreduce: op that is not callable", lambda world, _: world.allreduce(1, op="+"), TypeError,
           r"op must be callable, not 'str'"),
    InRank("scatter: not one object per rank", lambda world, _: world.scatter([1, 2, 3], root=0), ValueError,
           r"scatter's objs must hold one object per rank: expected 2, got 3"),
    InRank("scatter: objs that are not a sequence", lambda world, _: world.scatter(7, root=0), TypeError,
           r"scatter's objs must be a sequence of 2 objects, one per rank, not 'int'"),
    InRank("alltoall: not one object per rank", lambda world, _: world.alltoall([1]), ValueError,
           r"alltoall's objs must hold one object per rank: expected 2, got 1"),
    InRank("var put: dest out of range", lambda world, v: v.put(1, 2), ValueError, r"dest 2 is out of range",
           setup=lambda world: world.var(0)),
    InRank("var get: source out of range", lambda world, v: v.get(-3), ValueError, r"source -3 is out of range",
           setup=lambda world: world.var(0)),
    InRank("future read before the sync", lambda world, v: v.get(1).value, bsp.BSPError,
           r"the value of var.get\(1\) is not there yet: a get issued in superstep 0 completes when",
           setup=lambda world: world.var(0)),
    InRank("coarray put: a slice past the end", lambda world, xs: xs.put(np.zeros(4, np.int32), 1, slice(8, 12)),
           IndexError, r"slice 8:12 is out of bounds for axis 0 of size 10 \(rank 1's image has shape \(10,\)\)",
           setup=lambda world: _known(world, world.coarray(10, np.int32))),
    InRank("coarray put: an index past the end", lambda world, xs: xs.put(1, 1, 10), IndexError,
           r"index 10 is out of bounds for axis 0 of size 10 \(rank 1's image has shape \(10,\)\)",
           setup=lambda world: _known(world, world.coarray(10, np.int32))),
    InRank("coarray put: an index past the end of that rank's image", lambda world, xs: xs.put(1, 1, 3), IndexError,
           r"index 3 is out of bounds for axis 0 of size 3 \(rank 1's image has shape \(3,\)\)",
           setup=lambda world: _known(world, world.coarray(10 if world.pid == 0 else 3, np.int32))),
    InRank("coarray put: an integer array with an index past the end",
           lambda world, xs: xs.put([1, 2], 1, np.array([4, 10])), IndexError,
           r"index 10 is out of bounds for axis 0 of size 10", setup=lambda world: _known(world, world.coarray(10))),
    InRank("coarray put: values of the wrong dtype", lambda world, xs: xs.put([0.5, 1.5], 1, slice(0, 2)),
           TypeError, r"cannot put float64 values into a coarray of int32 without changing their kind",
           setup=lambda world: _known(world, world.coarray(10, np.int32))),
    InRank("coarray put: float values into an int coarray with op",
           lambda world, xs: xs.put(0.5, 1, np.array([0, 1]), op=np.add),
           TypeError, r"cannot put float64 values into a coarray of int64 without changing their kind",
           setup=lambda world: _known(world, world.coarray(10, np.int64))),
    InRank("coarray put: an op that is not a ufunc", lambda world, xs: xs.put(1.0, 1, 0, op=max), TypeError,
           r"op must be a numpy ufunc \(np.add, np.maximum, ...\), not 'builtin_function_or_method'",
           setup=lambda world: _known(world, world.coarray(10))),
    InRank("coarray put: an op that is not binary", lambda world, xs: xs.put(1.0, 1, 0, op=np.negative), TypeError,
           r"op must be a binary numpy ufunc \(two inputs, one output\); negative takes 1",
           setup=lambda world: _known(world, world.coarray(10))),
    InRank("coarray put: an op whose result changes the coarray's kind",
           lambda world, xs: xs.put(2, 1, 0, op=np.true_divide), TypeError,
           r"op divide cannot combine int64 values into a coarray of int64: Cannot cast ufunc 'divide' output "
           r"from dtype\('float64'\) to dtype\('int64'\) with casting rule 'same_kind'",
           setup=lambda world: _known(world, world.coarray(10, np.int64))),
    InRank("coarray put: values of the wrong shape", lambda world, xs: xs.put([1, 2, 3], 1, slice(0, 2)),
           ValueError, r"cannot put values of shape \(3,\) into index slice\(0, 2, None\), of shape \(2,\)",
           setup=lambda world: _known(world, world.coarray(10, np.int32))),
    InRank("coarray put: a boolean mask", lambda world, xs: xs.put(1, 1, np.ones(10, bool)), TypeError,
           r"boolean masks are not coarray indices: use np.flatnonzero\(mask\)",
           setup=lambda world: world.coarray(10, np.int32)),
    InRank("coarray put: integer arrays with np.newaxis", lambda world, xs: xs.put(1, 1, ([0, 1], None)),
           TypeError, r"a coarray index cannot hold None \(np.newaxis\): images keep their shape",
           setup=lambda world: world.coarray((4, 4))),
    InRank("coarray put: integer arrays that do not broadcast",
           lambda world, xs: xs.put(1, 1, (np.arange(3), np.arange(2))), IndexError,
           r"shape mismatch: coarray index arrays could not be broadcast together with shapes \(3,\) \(2,\)",
           setup=lambda world: world.coarray((4, 4))),
    InRank("coarray put: a float index", lambda world, xs: xs.put(1, 1, 2.0), TypeError,
           r"coarray indices are ints, slices and Ellipsis \(basic indexing\), or integer arrays, not 'float'",
           setup=lambda world: world.coarray(10, np.int32)),
    InRank("coarray get: source out of range", lambda world, xs: xs.get(2), ValueError,
           r"source 2 is out of range", setup=lambda world: world.coarray(10, np.int32)),
    InRank("coarray get: a slice before the start", lambda world, xs: xs[1, -11:], IndexError,
           r"slice -11:None is out of bounds for axis 0 of size 10", setup=lambda world: _known(world, world.coarray(10))),
    InRank("coarray get: an integer array past the end", lambda world, xs: xs.get(1, [0, 5]), IndexError,
           r"index 5 is out of bounds for axis 0 of size 5 \(rank 1's image has shape \(5,\)\)",
           setup=lambda world: _known(world, world.coarray(5))),
    InRank("coarray shape_of: pid out of range", lambda world, xs: xs.shape_of(2), ValueError,
           r"pid 2 is out of range", setup=lambda world: world.coarray(5)),
    InRank("coarray shape_of: before the sync after creation", lambda world, xs: xs.shape_of(1), bsp.BSPError,
           r"the shape of rank 1's image is known from the sync after the coarray was created",
           setup=lambda world: world.coarray(5)),
    InRank("send with copy=False: a payload that is not a buffer", lambda world, _: world.send([1.0], 1, copy=False),
           TypeError, r"send with copy=False takes a buffer \(a numpy array, bytearray, memoryview, ...\) and sends "
           r"it without copying; 'list' is not one"),
    InRank("coarray of Python objects", lambda world, _: world.coarray(np.array([None], dtype=object)),
           TypeError, r"a coarray holds numbers, not Python objects"),
    InRank("grid: a shape that does not multiply to nprocs", lambda world, _: world.grid((2, 2)), ValueError,
           r"grid shape \(2, 2\) has 4 places for 2 ranks: its extents must multiply to nprocs = 2"),
    InRank("grid: an extent of 0", lambda world, _: world.grid((2, 0)), ValueError,
           r"a grid shape must be one or more positive integers, not \(2, 0\)"),
    InRank("grid: a shape that is not integers", lambda world, _: world.grid((2.0, 1)), TypeError,
           r"a grid shape must be a tuple of positive integers, not \(2.0, 1\)"),
    InRank("grid rank_of: coordinates outside the grid", lambda world, grid: grid.rank_of((0, 2)), ValueError,
           r"coords \(0, 2\) are not in the grid \(2, 1\)", setup=lambda world: world.grid((2, 1))),
    InRank("grid along: an axis the grid does not have", lambda world, grid: grid.along(2), ValueError,
           r"axis 2 is out of range for the 2-D grid \(2, 1\)", setup=lambda world: world.grid((2, 1))),
    InRank("grid row: a grid that is not 2-D", lambda world, grid: grid.row, ValueError,
           r"grid.row is defined for 2-D grids; this grid \(2,\) has 1 axes: use grid.along\(axis\)",
           setup=lambda world: world.grid((2,))),
    InRank("split: an unhashable color", lambda world, _: world.split([1]), TypeError,
           r"split's color must be hashable \(an int or a str, say\), not 'list'"),
    InRank("split: a color that is not equal to itself", lambda world, _: world.split(float("nan")), ValueError,
           r"split's color must equal itself, and nan does not"),
    InRank("split: a key that is not an integer", lambda world, _: world.split(0, key="first"), TypeError,
           r"split's key must be an integer or None, not 'str'"),
    InRank("group broadcast: a root outside the group", lambda world, group: group.broadcast(1, root=1),
           ValueError, r"root \(a pid within the group\) 1 is out of range: pids run from 0 to 0 \(1 ranks\)",
           setup=lambda world: world.split(world.pid)),
    InRank("group scatter: not one object per rank of the group",
           lambda world, group: group.scatter([1, 2], root=0), ValueError,
           r"scatter's objs must hold one object per rank of the group: expected 1, got 2",
           setup=lambda world: world.split(world.pid)),
    InRank("DistArray: an unknown distribution", lambda world, _: DistArray.zeros(world, 8, distribution="random"),
           ValueError, r"distribution must be 'block', 'cyclic', \('block-cyclic', b\), \('block', sizes\) or None, "
           r"not 'random'"),
    InRank("DistArray: a local part of the wrong shape", lambda world, _: DistArray(world, (8,), np.zeros(3)),
           ValueError, r"rank 0 holds rows 0..3 of a \(8,\) array \(block\): its part has shape \(4,\), not \(3,\)"),
    InRank("DistArray halo: cyclic distribution", lambda world, d: d.halo(1), ValueError,
           r"halo needs the block distribution", setup=lambda world: DistArray.zeros(world, 8, distribution="cyclic")),
    InRank("DistArray halo: width beyond the rows", lambda world, d: d.halo(9), ValueError,
           r"halo width must be between 0 and the number of rows, 8; got 9", setup=lambda world: DistArray.zeros(world, 8)),
    InRank("DistArray: operands whose global shapes do not broadcast", lambda world, pair: pair[0] + pair[1],
           ValueError, r"operands could not be broadcast together with shapes \(8,\) \(3,\)",
           setup=lambda world: (DistArray.zeros(world, 8), DistArray.zeros(world, 3, distribution="cyclic"))),
    InRank("DistArray: an ndarray that does not broadcast against the global shape",
           lambda world, d: d + np.arange(3.0), ValueError,
           r"operands could not be broadcast together with shapes \(6,\) \(3,\)",
           setup=lambda world: DistArray.zeros(world, 6)),
    InRank("DistArray: a grid that does not multiply to nprocs",
           lambda world, _: DistArray.zeros(world, (4, 4), distribution=("block", "block"), grid=(2, 3)),
           ValueError, r"grid \(2, 3\) has 6 processors, but the run has 2 ranks"),
    InRank("DistArray: a distribution of the wrong length",
           lambda world, _: DistArray.zeros(world, (4, 4, 4), distribution=("block", "cyclic")), ValueError,
           r"distribution \('block', 'cyclic'\) has 2 entries, but the array of shape \(4, 4, 4\) has 3 axes"),
    InRank("DistArray: a block size below 1",
           lambda world, _: DistArray.zeros(world, (4, 4), distribution=(("block-cyclic", 0), None)), ValueError,
           r"axis 0: the block size of \('block-cyclic', 0\) must be at least 1, not 0"),
    InRank("DistArray: a grid that splits an axis whose distribution is None",
           lambda world, _: DistArray.zeros(world, (4, 4), distribution=(None, "block"), grid=(2, 1)), ValueError,
           r"grid \(2, 1\) puts 2 processors on axis 0, whose distribution is None"),
    InRank("DistArray halo: a block-cyclic axis", lambda world, d: d.halo(1), ValueError,
           r"halo needs the block distribution on every split axis: axis 1 is \('block-cyclic', 2\)",
           setup=lambda world: DistArray.zeros(world, (4, 8), distribution=("block", ("block-cyclic", 2)))),
    InRank("DistArray halo: widths of the wrong length", lambda world, d: d.halo((1, 1)), ValueError,
           r"halo widths \(1, 1\) must give one width per axis of the array of shape \(4, 8, 2\)",
           setup=lambda world: DistArray.zeros(world, (4, 8, 2), distribution=("block", "block", None))),
    InRank("DistArray index: an axis out of range", lambda world, d: d.index(2), ValueError,
           r"axis 2 is out of range for a 2-dimensional DistArray", setup=lambda world: DistArray.zeros(world, (4, 4))),
    InRank("DistArray @: shapes that do not match", lambda world, pair: pair[0] @ pair[1], ValueError,
           r"matmul: Input operand 1 has a mismatch in its core dimension 0.* \(global shapes \(4, 3\) and \(4, 3\)\)",
           setup=lambda world: (DistArray.zeros(world, (4, 3), distribution=("block", "block")),) * 2),
    InRank("DistArray matmul: panels out of range", lambda world, d: d.matmul(d, panels=5), ValueError,
           r"panels must be between 1 and k = 4 \(A @ B of \(4, 4\) and \(4, 4\)\), not 5",
           setup=lambda world: DistArray.zeros(world, (4, 4))),
    InRank("save: a value that cannot be pickled", lambda world, _: world.save(step=(x for x in [])), TypeError,
           r"save: the value of 'step' cannot be saved: cannot serialize a 'generator' object"),
    InRank("save: a DistArray of Python objects", lambda world, d: world.save(names=d), TypeError,
           r"save: the DistArray 'names' holds Python objects \(dtype object\)",
           setup=lambda world: DistArray.zeros(world, 4, dtype=object)),
    InRank("restore: a distribution that is not a mapping", lambda world, _: world.restore(distribution="cyclic"),
           TypeError, r"restore's distribution must map the names of saved DistArrays to a distribution"),
    InRank("DistArray dot: shapes not aligned", lambda world, d: d.dot(d), ValueError,
           r"shapes \(4,2\) and \(4,2\) not aligned: 2 \(dim 1\) != 4 \(dim 0\) \(global shapes \(4, 2\) and \(4, 2\)\)",
           setup=lambda world: DistArray.zeros(world, (4, 2))),
]


def _bad_spmd_body() -> None:
    spmd(nprocs=[2])(lambda: None)


def _with_environment(name: str, value: str) -> Callable[[], Any]:
    """A call of bsp.run with one environment variable set for it."""
    def call() -> Any:
        import os
        saved = os.environ.get(name)
        os.environ[name] = value
        try:
            return bsp.run(print)
        finally:
            if saved is None:
                del os.environ[name]
            else:
                os.environ[name] = saved
    return call


def _scaled(world, n):
    return n * world.pid


def _without_world(n):
    return n


def _replay_not_a_record() -> Any:
    """bsp.replay of a private file of this user's that is not a record."""
    import tempfile
    here = os.getcwd()
    with tempfile.TemporaryDirectory() as folder:
        os.chdir(folder)        # the message names the path as given
        try:
            with open("notes.txt", "w") as notes:
                notes.write("not a record\n")
            return bsp.replay("notes.txt", rank=0)
        finally:
            os.chdir(here)


def _replay_rank(rank: Any) -> Any:
    """bsp.recordings.replay of `rank` of a one-rank run recorded for it."""
    import tempfile
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "run.bsprec")
        bsp.run(lambda world: world.pid, nprocs=1, record=path)
        return bsp.replay(path, rank=rank)


OUTSIDE: list[Outside] = [
    Outside("run: a program that is not callable", lambda: bsp.run(42, nprocs=1), TypeError,
            r"the program must be callable, not 'int'"),
    Outside("run: nprocs of 0", lambda: bsp.run(print, nprocs=0), ValueError, r"nprocs must be at least 1, got 0"),
    Outside("run: nprocs of -1", lambda: bsp.run(print, nprocs=-1), ValueError, r"nprocs must be at least 1, got -1"),
    Outside("run: nprocs as a string", lambda: bsp.run(print, nprocs="4"), TypeError,
            r"nprocs must be a positive integer, not 'str'"),
    Outside("run: nprocs as a bool", lambda: bsp.run(print, nprocs=True), TypeError,
            r"nprocs must be a positive integer, not a bool"),
    Outside("run: an unknown backend", lambda: bsp.run(print, backend="threads"), ValueError,
            r"backend must be one of 'fork', 'mpi', not 'threads'"),
    Outside("run: a negative sync timeout", lambda: bsp.run(print, nprocs=1, sync_timeout=-1), ValueError,
            r"sync_timeout must be 0 \(no timeout\) or a positive number of seconds, not -1"),
    Outside("run: a sync timeout that is not a number", lambda: bsp.run(print, nprocs=1, sync_timeout="soon"),
            TypeError, r"sync_timeout must be a number of seconds, not 'str'"),
    Outside("run: a misspelt keyword of bsp.run's (nproc=)", lambda: bsp.run(_scaled, 3, nproc=2), TypeError,
            r"bsp.run got the keyword argument 'nproc', which neither bsp.run nor _scaled\(world, n\) takes: "
            r"did you mean nprocs\?"),
    Outside("run: a program without its World parameter", lambda: bsp.run(_without_world, 3, nprocs=1), TypeError,
            r"a program's first parameter is the World: bsp.run calls _without_world\(n\) as "
            r"program\(world, \*args, \*\*kwargs\); define it as def _without_world\(world, ...\)"),
    Outside("run: more arguments than the program takes", lambda: bsp.run(_scaled, 3, 4, nprocs=1), TypeError,
            r"bsp.run cannot call _scaled\(world, n\) with the world and these arguments: too many positional"),
    Outside("run: a checkpoint directory that is not a path", lambda: bsp.run(print, nprocs=1, checkpoint=3),
            TypeError, r"checkpoint must be the path of a directory, not 'int'"),
    Outside("run: a checkpoint directory that is a file", lambda: bsp.run(print, nprocs=1, checkpoint="/dev/null"),
            bsp.CheckpointError, r"checkpoint directory '/dev/null' is not a directory"),
    Outside("run: nested inside a program", lambda: bsp.run(lambda world: bsp.run(print, nprocs=1), nprocs=1),
            bsp.RemoteError, r"runs cannot be nested"),
    Outside("BSP_NPROCS that is not a number", _with_environment("BSP_NPROCS", "four"), ValueError,
            r"BSP_NPROCS must be a positive integer, not 'four'", mpi=False),
    Outside("BSP_NPROCS of 0", _with_environment("BSP_NPROCS", "0"), ValueError,
            r"BSP_NPROCS must be at least 1, got 0", mpi=False),
    Outside("BSP_BACKEND that is not a backend", _with_environment("BSP_BACKEND", "gpu"), ValueError,
            r"BSP_BACKEND must be one of 'fork', 'mpi', not 'gpu'", mpi=False),
    Outside("BSP_SYNC_TIMEOUT that is not a number", _with_environment("BSP_SYNC_TIMEOUT", "soon"), ValueError,
            r"BSP_SYNC_TIMEOUT must be a number of seconds \(0: no timeout\), not 'soon'", mpi=False),
    Outside("spmd: a test body without the World parameter", _bad_spmd_body, TypeError,
            r"must take the World as its first parameter"),
    Outside("dims_create: nprocs of 0", lambda: dims_create(0, 2), ValueError,
            r"dims_create's nprocs must be at least 1, got 0"),
    Outside("spmd: an empty list of nprocs", lambda: spmd(nprocs=[]), ValueError, r"spmd needs at least one nprocs"),
    Outside("run: a record that is not a path", lambda: bsp.run(print, nprocs=1, record=3), TypeError,
            r"record must be the path of a file to write, not 'int'"),
    Outside("run: a record in a directory that does not exist",
            lambda: bsp.run(print, nprocs=1, record="/no/such/directory/run.bsprec"), ValueError,
            r"record '/no/such/directory/run.bsprec': the directory '/no/such/directory' does not exist"),
    Outside("run: recorded and checkpointed", lambda: bsp.run(print, nprocs=1, record=os.devnull + "x",
                                                               checkpoint="/no/such/checkpoints"), ValueError,
            r"a run cannot be both recorded and checkpointed \(record '/dev/nullx', checkpoint directory "
            r"'/no/such/checkpoints'\): world.save and world.restore write and read files that the record does "
            r"not hold"),
    Outside("replay: a file that is not a record", _replay_not_a_record, ValueError,
            r"notes.txt is not a pybsp record \(it does not start with b'BSPREC\\r\\n'\)"),
    Outside("replay: a rank the record does not hold", lambda: _replay_rank(1), ValueError,
            r"rank=1, but the run recorded in run.bsprec had ranks 0..0"),
    Outside("replay: a rank of the wrong type", lambda: _replay_rank("0"), TypeError, r"rank must be an int, not 'str'"),
    Outside("%%bsp: an unknown option", lambda: parse_options("--ranks 2"), ValueError,
            r"%%bsp: unknown option\(s\) --ranks 2"),
    Outside("%%bsp: a timeout of 0", lambda: parse_options("-n 2 --timeout 0"), ValueError,
            r"%%bsp: --timeout must be a positive number of seconds, not 0.0"),
]
