"""DistArray: a global numpy array split over the ranks, which answers numpy
calls with numpy's answer (DESIGN.md §2.2).

- `distarray`: the class, whose methods delegate to the modules below;
- `distribution`: layouts (shape, a distribution per axis, a processor grid):
  index arithmetic, no communication;
- `remap`: moving elements between layouts in one superstep, the primitive
  under redistribution, transposition, halos and most operations;
- `halo`, `matmul` (SUMMA): the stencil exchange and the matrix product;
- `numpy_functions`: the table behind `__array_function__`, filled by the
  operation modules imported below;
- `superstep_kinds`: the kind of call that ends each operation's supersteps.

May import: bsp.objects, bsp.core, bsp.base, bsp.world.  Data enters as
numpy arrays and DistArrays, and moves between ranks only through
`remap` and the collectives, one superstep at a time."""

from bsp.arrays import sorting as sorting  # noqa: E402  np.sort, np.argsort, np.unique
from bsp.arrays import linalg as linalg  # noqa: E402  np.matmul, np.dot, np.vdot
from bsp.arrays import creation as creation  # noqa: E402  np.zeros_like, np.ones_like, np.empty_like, np.full_like
from bsp.arrays import global_indexing as global_indexing  # noqa: E402  d[key], d[key] = value
from bsp.arrays import shape as shape  # noqa: E402  np.reshape, np.transpose, np.concatenate, ...
from bsp.arrays import elementwise as elementwise  # noqa: E402  ufuncs, np.where, isclose, allclose, array_equal, array_equiv, copy, astype
from bsp.arrays import reductions as reductions  # noqa: E402  sum prod min max mean std var argmin argmax all any count_nonzero cumsum cumprod
