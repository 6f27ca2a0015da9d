"""Who watches a rank's run: the observers that the launchers give the rank
runner (`bsp.launch.rank_runner.run_program`), chosen where the rank starts.

- the profile's recorder (`bsp.observe.profile_observer`), when the run is profiled: its
  record travels back in the rank's Outcome;
- rank 0's progress line on a terminal (`bsp.observe.logs`);
- the recording of what arrives (`bsp.recordings.recording`), when the program comes
  wrapped in a `Recorded`: it watches the transport rather than the engine.

The rank runner imports none of them; this module is where they meet.
"""

from __future__ import annotations

from typing import Any, Callable

from bsp.observe.logs import progress_line
from bsp.launch.outcome import Outcome
from bsp.launch.rank_runner import Stopped, run_program
from bsp.observe.profile_observer import Recorder
from bsp.recordings.recording import Recorded
from bsp.core.transport import Transport


def run_rank(transport: Transport, program: Callable[..., Any], args: tuple[Any, ...], kwargs: dict[str, Any],
             profile: bool = False) -> Outcome:
    """Run `program(world, *args, **kwargs)` on this rank (see
    bsp.launch.rank_runner.run_program), with the observers this rank needs.  `profile`:
    record every superstep (see bsp.observe.profile); the record travels in the
    Outcome.  A `Recorded` program records this rank's exchanges (see
    bsp.recordings.recording)."""
    stop_recording: Callable[[], None] | None = None
    wrapped: Any = program          # a Recorded program is no callable (see Session.wrap)
    if isinstance(wrapped, Recorded):
        program, transport, stop_recording = wrapped.start(transport)
    recorder = Recorder() if profile else None
    observers = [observer for observer in (recorder, progress_line(transport.pid)) if observer is not None]
    stopped = False
    try:
        outcome = run_program(transport, program, args, kwargs, observers)
    except Stopped:
        stopped = True      # ended by the launcher: its record stops where it was, as a killed rank's does
        raise
    finally:
        if stop_recording is not None and not stopped:
            stop_recording()
    if recorder is not None:
        outcome.profile = recorder.result(outcome.pid)
    return outcome
