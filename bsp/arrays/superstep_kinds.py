"""The kinds of call (see bsp.core.sync_record.Kind) that end DistArray's own
supersteps.  Each operation has its own, so that mismatch messages and
profiles name it, and one rank's transpose against another's redistribute
is a SyncMismatchError, not a silent exchange of the wrong elements."""

from __future__ import annotations

from bsp.core.sync_record import define_kind

HALO = define_kind(20, "halo")
REDISTRIBUTE = define_kind(21, "redistribute")
TRANSPOSE = define_kind(22, "transpose")
MATMUL = define_kind(23, "matmul")          # a superstep of SUMMA: panels along grid rows and columns
FROM_LOCAL = define_kind(24, "from_local")  # the allgather of the parts' shapes and dtypes
BALANCE = define_kind(25, "balance")

# elementwise numpy and reductions (bsp.arrays.elementwise, bsp.arrays.reductions): 40-49
ELEMENTWISE = define_kind(40, "elementwise")          # an operand (or where=, out=) to the result's layout
ELEMENTWISE_OUT = define_kind(41, "elementwise_out")  # a result back into an out= DistArray of another layout
REDUCTION = define_kind(42, "reduction")              # the partial reductions, to the result's holders
SCAN = define_kind(43, "scan")                        # cumsum/cumprod: the parts' totals, to later ranks
SCAN_TO_BLOCK = define_kind(44, "scan_to_block")      # cumsum/cumprod: a cyclic scanned axis made "block"

# global indexing and shape (bsp.arrays.global_indexing, bsp.arrays.shape): 50-59
GETITEM = define_kind(50, "getitem")              # d[key]: a selection's elements to its "block" parts
SETITEM = define_kind(51, "setitem")              # d[key] = value: the values to the selected elements' owners
ELEMENT = define_kind(52, "element")              # a single element, from its owner to every rank
MASK_COUNTS = define_kind(53, "mask_counts")      # d[mask]: each rank's number of selected elements
RESHAPE = define_kind(54, "reshape")              # reshape, ravel, flatten: elements to "block" rows
CONCATENATE = define_kind(55, "concatenate")      # concatenate, stack: the operands to "block" rows
SQUEEZE = define_kind(56, "squeeze")              # squeeze of a split axis: elements to "block" rows

# sorting (bsp.arrays.sorting) and linear algebra (bsp.arrays.linalg): 60-69
SORT_SAMPLES = define_kind(60, "sort_samples")      # sample sort: the regular samples, to every rank of the group
SORT_BUCKETS = define_kind(61, "sort_buckets")      # sample sort: every element to its bucket, with the counts
SORT_PLACE = define_kind(62, "sort_place")          # sample sort: every element to its place in "block" parts
UNIQUE_COUNTS = define_kind(63, "unique_counts")    # unique: each rank's number of distinct values
LINALG_OPERANDS = define_kind(64, "linalg_operands")  # matmul/dot: the operand blocks a rank's result needs
LINALG_ALIGN = define_kind(65, "linalg_align")      # dot/vdot: one operand moved to the other's elements
LINALG_SUMS = define_kind(66, "linalg_sums")        # matmul: partial products summed onto the result's owners
