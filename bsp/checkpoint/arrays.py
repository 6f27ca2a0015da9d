"""DistArrays in a checkpoint: each rank writes its local block and, per
axis, the global indices it holds; a restart computes the indices each new
rank holds, under any number of ranks and any distribution, and copies the
overlapping pieces straight out of the old ranks' files.  Nothing is sent
between ranks and nothing is gathered anywhere.

Only DistArray's public interface is used: `shape`, `dtype`, `local`,
`distribution`, `grid` (where there is one), `index(axis)` (the global
indices held along an axis; a one-dimensional split has them as `rows`), and
the `zeros` constructor.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from bsp.checkpoint.files import write_array
from bsp.arrays.distarray import DistArray


def indices(array: DistArray) -> list[np.ndarray]:
    """The global indices (int64) this rank holds of `array`, per axis."""
    if hasattr(array, "index"):
        return [np.asarray(array.index(axis), np.int64) for axis in range(array.ndim)]
    return [np.asarray(array.rows, np.int64), *(np.arange(n, dtype=np.int64) for n in array.shape[1:])]


def layout(array: DistArray) -> dict[str, Any]:
    """What the array's constructors need to split it again the same way."""
    return {"distribution": array.distribution, "grid": getattr(array, "grid", None)}


def zeros(world: Any, shape: tuple[int, ...], dtype: np.dtype, layout: dict[str, Any]) -> DistArray:
    """A DistArray of zeros split as `layout` says (its grid None: the
    constructor's choice for this number of ranks)."""
    options = {key: value for key, value in layout.items() if value is not None}
    return DistArray.zeros(world, shape, dtype, **options)


def check_writable(name: str, array: DistArray) -> None:
    """Raise TypeError for a DistArray whose elements are Python objects:
    those have no raw bytes to write (keep them in a plain value)."""
    if array.dtype.hasobject:
        raise TypeError(f"save: the DistArray {name!r} holds Python objects (dtype {array.dtype}); "
                        "a checkpoint writes array data raw, so only numeric and fixed-size dtypes can be saved")


def write_part(dir_fd: int, stem: str, array: DistArray) -> dict[str, Any]:
    """Write this rank's block of `array` and the indices it cannot describe
    as a range; return the part's description."""
    held = []
    for axis, index in enumerate(indices(array)):
        progression = _progression(index)
        held.append(progression if progression is not None else
                    {"data": write_array(dir_fd, f"{stem}.i{axis}.npy", index), "count": len(index)})
    return {"shape": list(array.local.shape), "data": write_array(dir_fd, f"{stem}.npy", array.local),
            "index": held}


def _progression(index: np.ndarray) -> dict[str, int] | None:
    """{start, step, count} when `index` is an arithmetic progression."""
    count = len(index)
    if count == 0:
        return {"start": 0, "step": 1, "count": 0}
    step = int(index[1] - index[0]) if count > 1 else 1
    if step == 0 or (count > 2 and not np.array_equal(np.diff(index), np.full(count - 1, step))):
        return None
    return {"start": int(index[0]), "step": step, "count": count}


def fill(target: DistArray, parts: list[dict[str, Any]],
         read_rows: Callable[[int, dict[str, Any], Any], np.ndarray],
         read_index: Callable[[int, dict[str, Any]], np.ndarray]) -> None:
    """Copy into `target.local` every element it holds, from the parts the
    old ranks wrote.  `read_rows(rank, description, selection)` reads rows
    of a part, `read_index(rank, description)` an index array kept in a
    file."""
    wanted = indices(target)
    for rank, part in enumerate(parts):
        held = [_decode(rank, entry, read_index) for entry in part["index"]]
        picks = [_locate(want, have) for want, have in zip(wanted, held)]
        if any(len(new) == 0 for new, _ in picks):
            continue
        data = read_rows(rank, part, _selection(picks[0][1]))
        _assign(target.local, [new for new, _ in picks], _take(data, [old for _, old in picks[1:]]))


def _decode(rank: int, entry: dict[str, Any], read_index: Callable[[int, dict[str, Any]], np.ndarray]) -> np.ndarray:
    if "data" in entry:
        return read_index(rank, entry)
    return np.asarray(entry["start"] + entry["step"] * np.arange(entry["count"], dtype=np.int64))


def _locate(wanted: np.ndarray, held: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(positions in `wanted`, positions in `held`) of the indices in both."""
    if len(wanted) == 0 or len(held) == 0 or wanted.max() < held.min() or held.max() < wanted.min():
        return np.empty(0, np.int64), np.empty(0, np.int64)
    order = np.argsort(held, kind="stable")
    slots = np.clip(np.searchsorted(held, wanted, sorter=order), 0, len(held) - 1)
    found = held[order[slots]] == wanted
    return np.flatnonzero(found), order[slots[found]]


def _selection(positions: np.ndarray) -> slice | np.ndarray:
    """`positions` as a slice when they are an arithmetic progression (a
    view of a mapped file reads only those bytes), else as they are."""
    count = len(positions)
    if count == 1:
        return slice(int(positions[0]), int(positions[0]) + 1)
    step = int(positions[1] - positions[0]) if count > 1 else 0
    if step > 0 and np.array_equal(np.diff(positions), np.full(count - 1, step)):
        return slice(int(positions[0]), int(positions[-1]) + 1, step)
    return positions


def _take(data: np.ndarray, positions: list[np.ndarray]) -> np.ndarray:
    """`data` (rows already selected) at `positions` along the other axes."""
    selections = [_selection(p) for p in positions]
    if all(isinstance(s, slice) for s in selections):
        return np.asarray(data[(slice(None),) + tuple(selections)])
    return np.asarray(data[np.ix_(np.arange(len(data)), *positions)])


def _assign(local: np.ndarray, positions: list[np.ndarray], data: np.ndarray) -> None:
    selections = [_selection(p) for p in positions]
    if all(isinstance(s, slice) for s in selections):
        local[tuple(selections)] = data
    else:
        local[np.ix_(*positions)] = data
