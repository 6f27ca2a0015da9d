"""A fast pickle for plain numpy arrays, the commonest bulk message.

numpy pickles an array through its `__reduce_ex__`: the dtype as an object
of its own (a reduce and a state tuple), rebuilt on receipt by calling
`np.dtype` and its `__setstate__`.  For a 16 KiB array that is most of a
superstep's CPU time.  `dumps` writes the pickle by hand instead:

    PROTO 5, the global `bsp.core.plain_arrays._rebuild`, then its arguments
    (the dtype's `str`, the shape, whether the data is in Fortran order,
    the data) and REDUCE

The data is an out-of-band buffer (NEXT_BUFFER) from INBAND_LIMIT (32 KiB)
on, as numpy's own pickle makes it (from wire.INBAND_LIMIT on), else a
BYTEARRAY8 copy in the pickle.  The
result is an ordinary pickle: every receiver reads it with the standard
unpickler, beside messages pickled the usual way, and what arrives is an
array of the receiver's own memory, as before.

Only arrays that the dtype string describes completely take this path: the
exact type `np.ndarray` (no subclass), contiguous in C or Fortran order, of
a dtype that is not structured, not a subarray, holds no objects, carries no
metadata and has a legacy kind (bool, numbers, datetimes, bytes, str,
unstructured void).  Everything else returns None and is pickled as before.
"""

from __future__ import annotations

import pickle
import struct
from typing import Any, Iterator

import numpy as np

# Data below this many bytes goes in the pickle (a copy), above it out of
# band.  Higher than wire.INBAND_LIMIT: a message of one frame takes the
# transports' small-block paths (no extent table, no bulk framing), which
# cost more than copying up to this much data more often; below the fork
# transport's HANDOVER_MIN, so that such a block is still copied, not handed over.
INBAND_LIMIT = 1 << 15
_KINDS = frozenset("biufcmMSUV")
_GLOBAL = (b"\x80\x05"                                        # PROTO 5
           + b"\x8c" + bytes((len(__name__),)) + __name__.encode()  # SHORT_BINUNICODE module
           + b"\x8c\x08_rebuild\x93"                             # SHORT_BINUNICODE name, STACK_GLOBAL
           + b"(")                                             # MARK: the arguments follow
_DIM = struct.Struct("<Q")
_SIGNED_DIM = struct.Struct("<q")                            # as the unpickler reads a LONG1 of 8 bytes
_BYTES8 = struct.Struct("<BQ")
_INT8 = b"\x8a\x08"                                           # LONG1 of 8 bytes
_TUPLE, _REDUCE_STOP = b"t", b"tR."                           # TUPLE of the shape; TUPLE, REDUCE, STOP
_FORTRAN = {False: b"\x89", True: b"\x88"}                    # NEWFALSE, NEWTRUE
_BYTEARRAY8 = 0x96
_OUT_OF_BAND_END = b"\x97" + _REDUCE_STOP                    # NEXT_BUFFER (writable, as numpy's), then the end


# The pickle's head (up to the data), per (id of the dtype, shape, Fortran
# order), with the dtype itself, which keeps its id from being reused; the
# head is None for a dtype this module does not take.  Keyed by identity:
# dtypes that differ in metadata compare (and hash) equal.
_HEADS: dict[tuple[int, tuple[int, ...], bool], tuple[np.dtype[Any], bytes | None]] = {}
_DTYPES: dict[str, np.dtype[Any]] = {}      # the receiver's, by the dtype's str
_CACHED = 1024                              # entries of each, at most


def dumps(obj: Any, inband_limit: int) -> tuple[bytes, list[memoryview]] | None:
    """The pickle of `obj` and its out-of-band buffers (views of its own
    memory: capture them before it can change; data of fewer than
    `inband_limit` bytes is copied into the pickle), if `obj` is a plain
    contiguous array (see the module's docstring); None otherwise."""
    if type(obj) is not np.ndarray:
        return None
    flags = obj.flags
    if flags.c_contiguous:
        fortran = False
    elif flags.f_contiguous:
        fortran = True
    else:
        return None
    dtype = obj.dtype
    key = (id(dtype), obj.shape, fortran)
    cached = _HEADS.get(key)
    if cached is None or cached[0] is not dtype:
        if len(_HEADS) >= _CACHED:
            _HEADS.clear()
        cached = _HEADS[key] = (dtype, _head(dtype, obj.shape, fortran))
    head = cached[1]
    if head is None:
        return None
    data = obj.T if fortran else obj            # C-contiguous: its bytes in order
    if obj.nbytes >= inband_limit:
        return head + _OUT_OF_BAND_END, [data.reshape(-1).view(np.uint8).data]
    # one copy, by join, which takes the array's bytes through the buffer
    # protocol (even a datetime64's, which memoryview() refuses)
    frame: tuple[Any, ...] = (head, _BYTES8.pack(_BYTEARRAY8, obj.nbytes), data, _REDUCE_STOP)
    return b"".join(frame), []


def _head(dtype: np.dtype[Any], shape: tuple[int, ...], fortran: bool) -> bytes | None:
    """The pickle up to the data, for an array of `dtype` and `shape`; None
    for a dtype its str does not describe completely."""
    if (dtype.kind not in _KINDS or dtype.names is not None or dtype.subdtype is not None
            or dtype.metadata is not None or not dtype.itemsize):
        return None
    name = dtype.str.encode()
    head = [_GLOBAL, b"\x8c", bytes((len(name),)), name, b"("]
    for dim in shape:
        head += (_INT8, _DIM.pack(dim))
    head += (_TUPLE, _FORTRAN[fortran])
    return b"".join(head)


def _rebuild(dtype: str, shape: tuple[int, ...], fortran: bool, data: Any) -> np.ndarray:
    """The array a pickle made by `dumps` describes, on `data` (no copy:
    the receiver's own memory)."""
    kind = _DTYPES.get(dtype)
    if kind is None:
        if len(_DTYPES) >= _CACHED:
            _DTYPES.clear()
        kind = _DTYPES[dtype] = np.dtype(dtype)
    flat: np.ndarray = np.frombuffer(data, kind)
    if fortran:
        rebuilt: np.ndarray = flat.reshape(shape[::-1]).T
        return rebuilt
    return flat if len(shape) == 1 else flat.reshape(shape)


# The opcodes `load_at` looks for, as `dumps` writes them.
_MODULE_END = len(_GLOBAL)
_SHORT_BINUNICODE, _MARK, _TUPLE_CODE = 0x8C, _GLOBAL[-1], _TUPLE[0]
_NEWTRUE, _NEWFALSE, _NEXT_BUFFER = _FORTRAN[True][0], _FORTRAN[False][0], _OUT_OF_BAND_END[0]


def load_at(stream: bytes | memoryview, at: int, buffers: Iterator[Any]) -> tuple[np.ndarray, int] | None:
    """The array whose pickle, as `dumps` writes it, starts at `at` in
    `stream` (a view of bytes), and where that pickle ends; None if the
    bytes there are anything else, which the unpickler then reads.  What
    the unpickler would do with these bytes, without it: no unpickler to
    make, no class to find by name, no copy of the stream.  An out-of-band
    array takes the next of `buffers`; an in-band one, a copy of its data.
    Costs nothing in supersteps."""
    end = len(stream)
    if end - at < _MODULE_END + 2 or stream[at:at + _MODULE_END] != _GLOBAL:
        return None
    position = at + _MODULE_END
    if stream[position] != _SHORT_BINUNICODE:
        return None
    name_end = position + 2 + stream[position + 1]
    if name_end + 1 > end or stream[name_end] != _MARK:
        return None
    dtype = str(stream[position + 2:name_end], "utf-8", "surrogatepass")     # as the unpickler decodes it
    position = name_end + 1
    shape: list[int] = []
    while position + 10 <= end and stream[position:position + 2] == _INT8:
        shape.append(_SIGNED_DIM.unpack_from(stream, position + 2)[0])
        position += 10
    if position + 3 > end or stream[position] != _TUPLE_CODE or stream[position + 1] not in (_NEWTRUE, _NEWFALSE):
        return None
    fortran = stream[position + 1] == _NEWTRUE
    position += 2
    if stream[position] == _NEXT_BUFFER:
        if stream[position:position + len(_OUT_OF_BAND_END)] != _OUT_OF_BAND_END:
            return None
        data: Any = next(buffers, None)
        if data is None:
            raise pickle.UnpicklingError("not enough out-of-band buffers")
        return _rebuild(dtype, tuple(shape), fortran, data), position + len(_OUT_OF_BAND_END)
    if stream[position] != _BYTEARRAY8 or position + _BYTES8.size > end:
        return None
    start = position + _BYTES8.size
    stop = start + _BYTES8.unpack_from(stream, position)[1]
    if stop + len(_REDUCE_STOP) > end or stream[stop:stop + len(_REDUCE_STOP)] != _REDUCE_STOP:
        return None
    return _rebuild(dtype, tuple(shape), fortran, bytearray(stream[start:stop])), stop + len(_REDUCE_STOP)
