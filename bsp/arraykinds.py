"""The kinds of call (see bsp.record.Kind) that end DistArray's own
supersteps.  Each operation has its own, so that mismatch messages and
profiles name it, and one rank's transpose against another's redistribute
is a SyncMismatchError, not a silent exchange of the wrong elements."""

from __future__ import annotations

from .record import define_kind

HALO = define_kind(20, "halo")
REDISTRIBUTE = define_kind(21, "redistribute")
TRANSPOSE = define_kind(22, "transpose")
MATMUL = define_kind(23, "matmul")          # a superstep of SUMMA: panels along grid rows and columns
