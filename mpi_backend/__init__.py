"""The MPI backend of pybsp: ranks are the processes of an MPI job, on a
duplicated communicator (mpi4py).  `bsp` reaches it through
`bsp.launch.backends.launcher("mpi")` alone: `backend` (the Launcher), `launcher`
(rank 0's runs, the other ranks serving them), `transport` (the Transport),
`abort` (an orderly end of the job), `mpiexec` (finding and probing the MPI
library's launcher)."""

import bsp.compiled     # noqa: F401  # before mpi_backend.transport: which build runs (bsp/compiled.py)
