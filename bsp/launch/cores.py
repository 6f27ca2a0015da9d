"""The cores a rank may use: how many this process has, and each rank's
share of them for numpy's thread pools (BLAS, OpenMP).

numpy's BLAS starts as many threads as the machine has cores, in every
process, and they spin while they wait for work.  With several ranks on one
machine every rank's BLAS would run a thread per core: with two ranks on two
cores a 300x300 matrix product took 10 to 16 ms instead of 1 ms.  So each
rank limits its pools to its share of the cores, as process pools such as
loky do for their workers, unless the user chose a thread count in the
environment, which is then left as it is.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Iterator

# Environment variables by which users choose thread counts themselves.
USER_SETTINGS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                 "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def usable_cores() -> int:
    """The cores this process may run on (its affinity, where the OS has one)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:      # macOS
        return os.cpu_count() or 1


def share_cores(ranks_sharing: int, cores: int) -> int | None:
    """Limit this process's thread pools to `cores // ranks_sharing` threads
    (at least one), for `ranks_sharing` ranks on `cores` cores; return the
    limit, or None when the user's environment sets one instead."""
    limiter = _limit(ranks_sharing, cores)
    return None if limiter is None else max(1, cores // max(1, ranks_sharing))


@contextlib.contextmanager
def cores_shared(ranks_sharing: int, cores: int) -> Iterator[None]:
    """`share_cores` for the length of a with block, then the pools as they
    were: for a launching process that is also a rank (MPI rank 0), whose
    code outside runs must see the thread pools a fork backend's launching
    process sees (BLAS results can depend on the number of threads)."""
    limiter = _limit(ranks_sharing, cores)
    try:
        yield
    finally:
        if limiter is not None:
            limiter.restore_original_limits()


def _user_chose_threads() -> bool:
    return any(os.environ.get(name) for name in USER_SETTINGS)


def load_limiter() -> None:
    """In a launching process about to fork its ranks: import threadpoolctl
    now, if the ranks will limit their pools, so that the ranks share the
    module's memory rather than each import it into pages of its own (a
    rank's private memory: 5.4 MiB with the import, 3.6 MiB without)."""
    if not _user_chose_threads():
        import threadpoolctl  # noqa: F401


def _limit(ranks_sharing: int, cores: int) -> Any:
    """The threadpoolctl limiter of share_cores, or None."""
    if _user_chose_threads():
        return None
    from threadpoolctl import ThreadpoolController     # imported here: only ranks need it (see load_limiter)

    controller = ThreadpoolController()
    limiter = controller.limit(limits=max(1, cores // max(1, ranks_sharing)))
    for library in controller.lib_controllers:
        if library.internal_api == "openblas":
            _stop_openblas_workers(library.dynlib)
    return limiter


def _stop_openblas_workers(openblas: Any) -> None:
    """Setting OpenBLAS's thread count starts its worker threads, which
    then spin for about 0.1 s: in a fresh rank, competing with the ranks
    for the cores even when the program never calls BLAS.  Stopping them
    (as OpenBLAS does itself before a fork) leaves them to start on the
    first call that needs them."""
    stop = getattr(openblas, "blas_thread_shutdown_", None)
    if stop is not None:
        stop()
