"""`world.restore()`: the last committed checkpoint, read back on any
number of ranks (see bsp.checkpoint.save for the directory and its format).

Two supersteps: in the first, rank 0 reads the LATEST pointer and the
manifest it names (checking its SHA-256, the format and the program) and
sends the manifest to every rank; then every rank reads what it holds
straight from the files of the ranks that wrote it, checking the checksum of
every chunk it reads; in the second, the ranks tell each other whether that
went well, so that a damaged file is the same CheckpointError on every
rank.  Nothing is written: a failed restore leaves the directory as it was.
"""

from __future__ import annotations

import hashlib
import json
import os
from typing import TYPE_CHECKING, Any, Mapping

import numpy as np

from bsp.checkpoint import arrays as arrays_of
from bsp.checkpoint import files as files
from bsp.checkpoint.save import LATEST, MANIFEST, read_latest
from bsp.objects.collectives import superstep
from bsp.errors import CheckpointError
from bsp.core.sync_record import Kind

if TYPE_CHECKING:
    from bsp.checkpoint.save import _Checkpoints
    from bsp.world import World


def restore(world: "World", distribution: Mapping[str, Any] | None = None,
            grid: Mapping[str, Any] | None = None) -> dict[str, Any] | None:
    """world.restore: see World.restore."""
    engine = world.engine
    engine.check_caller()
    layouts = _layouts(distribution, grid)
    checkpoints: _Checkpoints | None = getattr(world, "_checkpoints", None)
    if checkpoints is None:
        return None
    found = _find(checkpoints) if world.pid == 0 else None
    found = superstep(engine, Kind.RESTORE, [(range(world.nprocs), found)] if world.pid == 0 else [])[0][1]
    if isinstance(found, str):
        raise CheckpointError(found)
    if found is None:
        return None
    name, manifest = found
    _check_layouts(layouts, manifest)
    error, state = None, None
    try:
        state = _load(world, checkpoints, name, manifest, layouts)
    except CheckpointError as failure:
        error = str(failure)
    except Exception as failure:        # a value that cannot be rebuilt here (a class that is gone, memory)
        error = f"rank {world.pid} could not rebuild what {name} holds: {type(failure).__name__}: {failure}"
    errors = [text for _, text in superstep(engine, Kind.RESTORE, [(range(world.nprocs), error)], 1) if text]
    if errors:
        raise CheckpointError(errors[0])
    return state


def _layouts(distribution: Mapping[str, Any] | None, grid: Mapping[str, Any] | None) -> dict[str, dict[str, Any]]:
    """{name: {distribution and/or grid}} asked for DistArrays."""
    layouts: dict[str, dict[str, Any]] = {}
    for option, given in (("distribution", distribution), ("grid", grid)):
        if given is None:
            continue
        if not isinstance(given, Mapping):
            raise TypeError(f"restore's {option} must map the names of saved DistArrays to a {option}, "
                            f"not be a {type(given).__name__!r}")
        for key, value in given.items():
            layouts.setdefault(key, {})[option] = value
    return layouts


def _check_layouts(layouts: dict[str, dict[str, Any]], manifest: dict[str, Any]) -> None:
    unknown = sorted(set(layouts) - set(manifest["arrays"]))
    if unknown:
        raise ValueError(f"restore: {', '.join(map(repr, unknown))} named in distribution/grid "
                         f"{'is' if len(unknown) == 1 else 'are'} not among the saved DistArrays "
                         f"({', '.join(map(repr, manifest['arrays'])) or 'none'})")


def _find(checkpoints: "_Checkpoints") -> tuple[str, dict[str, Any]] | str | None:
    """On rank 0: (name, manifest) of the committed checkpoint, None if
    there is none, or what is wrong with it."""
    try:
        latest = read_latest(checkpoints.fd, checkpoints.path, checkpoints.identity, checkpoints.force)
        if latest is None:
            return None
        name = latest["checkpoint"]
        fd = files.open_directory(name, checkpoints.fd)
        try:
            where = f"{checkpoints.path}/{name}/{MANIFEST}"
            data = files.read_small(fd, MANIFEST, where)
        finally:
            os.close(fd)
        if data is None:
            raise CheckpointError(f"{where} is missing")
        if hashlib.sha256(data).hexdigest() != latest.get("manifest_sha256"):
            raise CheckpointError(f"{where} is damaged: its SHA-256 is not the one {LATEST} recorded")
        return name, json.loads(data)
    except CheckpointError as error:
        return str(error)
    except (KeyError, TypeError, ValueError) as error:
        return f"the checkpoint in {checkpoints.path} is damaged: {type(error).__name__}: {error}"


def _load(world: "World", checkpoints: "_Checkpoints", name: str, manifest: dict[str, Any],
          layouts: dict[str, dict[str, Any]]) -> dict[str, Any]:
    old = manifest["nprocs"]
    same = old == world.nprocs
    differing = sorted(key for key, shared in manifest["values"].items() if not shared)
    if differing and not same:
        raise CheckpointError(
            f"{checkpoints.path}/{name} was saved by {old} ranks, and the values of "
            f"{', '.join(map(repr, differing))} differed from rank to rank: they can only be restored on {old} "
            f"ranks, not {world.nprocs} (to restart on another number of ranks, keep per-rank data in a "
            f"DistArray, or save values that are the same on every rank)")
    fd = files.open_directory(name, checkpoints.fd)
    try:
        source = world.pid % old
        where = f"{checkpoints.path}/{name}"
        state = {key: files.read_value(fd, f"r{source}.values", manifest["ranks"][source]["values"][key], where)
                 for key in manifest["values"]}
        for key, meta in manifest["arrays"].items():
            asked = layouts.get(key, {})
            # the saved grid goes with the saved distribution: a new one chooses its own
            keep_grid = same and "distribution" not in asked
            layout = {"distribution": _tuples(meta["distribution"]), "grid": _tuples(meta["grid"]) if keep_grid else None}
            layout.update(asked)
            state[key] = _array(world, fd, where, key, meta, manifest, layout)
    finally:
        os.close(fd)
    return state


def _array(world: "World", fd: int, where: str, key: str, meta: dict[str, Any], manifest: dict[str, Any],
           layout: dict[str, Any]) -> Any:
    dtype = _dtype(meta["dtype"])
    if dtype.hasobject:     # raw bytes read as object pointers: only a crafted manifest says so
        raise CheckpointError(f"{where}/{MANIFEST} is damaged: it gives {key!r} the dtype {dtype}, which pybsp "
                              f"never writes")
    target = arrays_of.zeros(world, tuple(meta["shape"]), dtype, layout)
    parts = [rank["arrays"][key] for rank in manifest["ranks"]]

    def read_rows(rank: int, part: dict[str, Any], selection: Any) -> np.ndarray:
        with files.ArrayPart(fd, part["data"], tuple(part["shape"]), dtype,
                             f"{where}, rank {rank}'s part of {key!r}") as opened:
            return opened.rows(selection)

    def read_index(rank: int, entry: dict[str, Any]) -> np.ndarray:
        with files.ArrayPart(fd, entry["data"], (entry["count"],), np.dtype(np.int64),
                             f"{where}, rank {rank}'s indices of {key!r}") as opened:
            return opened.rows(slice(None))

    arrays_of.fill(target, parts, read_rows, read_index)
    return target


def _tuples(value: Any) -> Any:
    """JSON's lists back into the tuples a distribution or grid was."""
    return tuple(_tuples(item) for item in value) if isinstance(value, list) else value


def _dtype(descr: Any) -> np.dtype:
    return np.lib.format.descr_to_dtype(descr if isinstance(descr, str) else [tuple(field) for field in descr])  # type: ignore[arg-type]  # JSON's lists of the descr's tuples
