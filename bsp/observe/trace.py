"""The timeline of a profiled run as a Chrome Trace Event JSON file, which
opens in Perfetto (https://ui.perfetto.dev) and in chrome://tracing.

One process per rank (`pid` = the rank, named "rank N"), one track in it,
and per superstep three spans ("X" events), back to back:

- compute: from leaving the previous sync (or starting) to entering this one;
- barrier: in the sync, waiting for the last rank to arrive;
- exchange: the rest of the sync, from the last rank's arrival to leaving
  (delivering the data, and the sync's own latency).

Each span's args name the superstep, the call that ended it and where, and
the rank's bytes and messages sent and received.  A counter per rank,
"h (bytes)", holds each superstep's bytes sent and received over its span.

Timestamps are microseconds, rounded to the nanosecond, from the start of the
first run written to the file: runs of one process that write the same file
are appended to it, on one time axis (a new process starts the file anew).
Each span is one nanosecond shorter than its interval, so that rounding never
makes neighbours overlap (which Perfetto's importer refuses).
"""

from __future__ import annotations

import json
import os
from typing import Any

from bsp.base.atomic_files import write_bytes_atomically
from bsp.observe.output_paths import PathLike
from bsp.observe.profile import Profile

SPANS = ("compute", "barrier", "exchange")
COUNTER = "h (bytes)"
REQUIRED_KEYS = ("name", "ph", "ts", "pid", "tid")      # what every event here has (and "cat", "args")

_files: dict[str, tuple[float, list[dict[str, Any]], list[dict[str, Any]]]] = {}


def events(profile: Profile, origin: float | None = None) -> list[dict[str, Any]]:
    """The trace events of `profile`: metadata naming each rank, then per
    rank and superstep its three spans and its counter.  Timestamps are
    microseconds since `origin` (wall clock seconds; default the profile's
    own start).  Costs O(ranks * supersteps)."""
    shift = profile.origin - (profile.origin if origin is None else origin)
    result = [_event("process_name", "M", 0, rank, {"name": f"rank {rank}"}) for rank in range(profile.nprocs)]
    result += [_event("process_sort_index", "M", 0, rank, {"sort_index": rank}) for rank in range(profile.nprocs)]
    begins = profile.entered - profile.compute
    middles = profile.entered + profile.waiting
    for rank in range(profile.nprocs):
        for step in range(profile.supersteps):
            args = _args(profile, rank, step)
            bounds = _nanoseconds(shift, begins[rank, step], profile.entered[rank, step],
                                  middles[rank, step], profile.left[rank, step])
            for name, start, end in zip(SPANS, bounds, bounds[1:]):
                result.append(_event(name, "X", start / 1e3, rank, args, dur=max(0, end - start - 1) / 1e3))
            result.append(_event(COUNTER, "C", bounds[0] / 1e3, rank,
                                 {"sent": int(profile.bytes_sent[rank, step]),
                                  "received": int(profile.bytes_received[rank, step])}))
    return result


def _nanoseconds(shift: float, *moments: float) -> list[int]:
    return [round((shift + moment) * 1e9) for moment in moments]


def _event(name: str, phase: str, ts: float, pid: int, args: dict[str, Any], **more: Any) -> dict[str, Any]:
    return {"name": name, "cat": "bsp", "ph": phase, "ts": ts, "pid": pid, "tid": 0, **more, "args": args}


def _args(profile: Profile, rank: int, step: int) -> dict[str, Any]:
    return {"superstep": step, "call": profile.label(step), "site": profile.sites[rank][step],
            "bytes_sent": int(profile.bytes_sent[rank, step]),
            "bytes_received": int(profile.bytes_received[rank, step]),
            "messages_sent": int(profile.messages_sent[rank, step]),
            "messages_received": int(profile.messages_received[rank, step]),
            "bytes_written": int(profile.bytes_written[rank, step])}


def write(profile: Profile, path: PathLike) -> None:
    """Write the trace of `profile` to `path` as JSON.  A run of this process
    that wrote the same path before keeps its events there: the file holds
    every such run, on one time axis.  Costs O(ranks * supersteps) for this
    run, and rewrites the file whole.  Raises OSError if it cannot be
    written."""
    key = os.path.realpath(path)
    origin, written, runs = _files.get(key, (profile.origin, [], []))
    named = {event["pid"] for event in written if event["ph"] == "M"}
    written.extend(event for event in events(profile, origin) if event["ph"] != "M" or event["pid"] not in named)
    runs.append({"program": profile.program, "backend": profile.backend, "nprocs": profile.nprocs,
                 "start_us": round((profile.origin - origin) * 1e6, 3)})
    _files[key] = (origin, written, runs)
    text = json.dumps({"traceEvents": written, "otherData": {"generator": "pybsp", "runs": runs}})
    write_bytes_atomically(path, text.encode())


def read(path: PathLike) -> dict[str, Any]:
    """A trace file as its JSON object: "traceEvents", and "otherData" when
    pybsp wrote it (a bare array of events comes back as {"traceEvents":
    events}).  Raises OSError if it cannot be read, ValueError if it holds
    no trace events."""
    with open(path) as source:
        try:
            data = json.load(source)
        except json.JSONDecodeError as error:
            raise ValueError(f"{os.fspath(path)!r} is not JSON: {error}") from None
    if isinstance(data, list):
        data = {"traceEvents": data}
    trace_events = data.get("traceEvents") if isinstance(data, dict) else None
    if not isinstance(trace_events, list) or not all(isinstance(event, dict) for event in trace_events):
        raise ValueError(f"{os.fspath(path)!r} is not a Chrome trace: it has no list of traceEvents")
    return data  # type: ignore[no-any-return]  # a dict, checked above


def describe_runs(data: dict[str, Any]) -> str:
    """'program: 2 ranks, fork backend' for each run pybsp wrote in a trace
    read by `read` ('' for a trace of unknown origin)."""
    runs = data.get("otherData", {}).get("runs", []) if isinstance(data.get("otherData"), dict) else []
    described = [f"{run.get('program')}: {run.get('nprocs')} ranks, {run.get('backend')} backend"
                 for run in runs if isinstance(run, dict)]
    return "; ".join(dict.fromkeys(described))
