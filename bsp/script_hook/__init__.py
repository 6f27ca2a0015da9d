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

_HERE = os.path.dirname(os.path.abspath(__file__))
OPTION, TARGET, PYTHONPATH = "_BSP_HOOK_OPTION", "_BSP_HOOK_TARGET", "_BSP_HOOK_PYTHONPATH"


def install(env: dict[str, str], option: str, target: str) -> None:
    """Make the Python that `env` starts warn, at its end, that `option`
    had nothing to act on if `target` never called bsp.run."""
    env[OPTION], env[TARGET] = option, target
    if "PYTHONPATH" in env:
        env[PYTHONPATH] = env["PYTHONPATH"]
    env["PYTHONPATH"] = os.pathsep.join([_HERE, *filter(None, [env.get("PYTHONPATH")])])
