"""The fork backend's `bsp.launch.launcher.Launcher`: ranks forked from the
launching process for each run (see `launcher`)."""

from __future__ import annotations

from typing import Any, Callable

from bsp.launch.launcher import Launcher
from bsp.launch.outcome import Outcome
from bsp.fork import launcher


class ForkLauncher(Launcher):
    """Forks `nprocs` ranks per run; a run may have any number of them."""

    name = "fork"

    def __init__(self, timeout: float | None = None):
        self.timeout = timeout      # seconds a whole run may take (RunTimeoutError), None: no limit

    def launch(self, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any], nprocs: int,
               sync_timeout: float | None, profile: bool) -> list[Outcome]:
        return launcher.launch(program, args, kwargs, nprocs, self.timeout, sync_timeout, profile)

    def world_size(self) -> int | None:
        return None
