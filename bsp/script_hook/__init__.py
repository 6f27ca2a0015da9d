"""A check that `bsp run` slips into the script's process: at its end, a
warning if the script never called bsp.run, so that the ranks `bsp run -n N`
asked for were never used (a script run without its `if __name__ ==
"__main__":` block, the wrong script).

It travels as a `sitecustomize` module on PYTHONPATH, which Python imports at
start-up, before the script; it takes itself off sys.path and PYTHONPATH at
once and imports the sitecustomize it hid, if there is one, so that the
script sees the same path as under plain python, and the processes it starts
see no hook.
"""

from __future__ import annotations

import os
from typing import Sequence

_HERE = os.path.dirname(os.path.abspath(__file__))
OPTION, TARGET, PYTHONPATH = "_BSP_HOOK_OPTION", "_BSP_HOOK_TARGET", "_BSP_HOOK_PYTHONPATH"
# The variables that may hold a process's rank in its MPI job: set when the
# ranks other than 0 print nothing until their first bsp.run, from which
# on they run only what rank 0 sends (the script's own output is rank 0's).
RANKS = "_BSP_HOOK_RANK_VARIABLES"
# In such a muted rank: the descriptor that keeps its stdout meanwhile.
MUTED_STDOUT = "_BSP_HOOK_MUTED_STDOUT"


def install(env: dict[str, str], option: str, target: str, rank_variables: Sequence[str] = ()) -> None:
    """Make the Python that `env` starts warn, at its end, that `option`
    had nothing to act on if `target` never called bsp.run.  With
    `rank_variables` (the processes are the ranks of an MPI job): only
    rank 0 warns, and the other ranks' stdout is muted until their first
    bsp.run (see bsp.launch.stdio.unmute), so that the script's own output
    comes out once, as under the fork backend."""
    env[OPTION], env[TARGET] = option, target
    if rank_variables:
        env[RANKS] = ",".join(rank_variables)
    if "PYTHONPATH" in env:
        env[PYTHONPATH] = env["PYTHONPATH"]
    env["PYTHONPATH"] = os.pathsep.join([_HERE, *filter(None, [env.get("PYTHONPATH")])])
