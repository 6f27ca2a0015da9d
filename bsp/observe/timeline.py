"""A profiled run's timeline as a PNG picture: one row per rank, its
supersteps' compute, barrier and exchange spans in colour (the same spans as
the Chrome trace, see bsp.observe.trace), and a dashed line where each
superstep ends (when the last rank leaves its exchange), labelled with the
call that ended it and its call site ("sync at prog.py:12 in step"), so
that a wait reads against a line of code.

    bsp run -n 2 --trace trace.json prog.py
    bsp profile plot trace.json -o timeline.png

Needs matplotlib, an optional extra (pybsp[plot]): pip install matplotlib.  It is
imported on first use, and drawn without pyplot, so nothing here changes
matplotlib's backend or global state.
"""

from __future__ import annotations

import os
from typing import Any, Iterable

from bsp.observe.output_paths import PathLike
from bsp.observe.profile import Profile
from bsp.observe.trace import SPANS, describe_runs, events as trace_events, read

COLOURS = dict(zip(SPANS, ("#59a14f", "#e15759", "#4e79a7")))     # compute green, barrier red, exchange blue


LABELLED = 40           # superstep ends labelled at most (evenly spread); every one has its line


def plot(source: Profile | PathLike | Iterable[dict[str, Any]], png: PathLike, title: str | None = None) -> None:
    """Draw the timeline of `source` (a Profile, a trace file written by
    bsp.observe.trace, or its events) into the PNG file `png`.  Costs O(spans), and
    about a second of matplotlib for thousands of them.  Raises ImportError
    when matplotlib is missing, ValueError when `source` has no spans,
    OSError if a file cannot be read or written."""
    figure_of(source, title).savefig(png, dpi=120)


def figure_of(source: Profile | PathLike | Iterable[dict[str, Any]], title: str | None = None) -> Any:
    """The matplotlib Figure that `plot` saves (raises as `plot` does)."""
    if isinstance(source, Profile):
        spans = trace_events(source)
        title = title or f"{source.program}: {source.nprocs} ranks, {source.backend} backend"
    elif isinstance(source, (str, os.PathLike)):
        data = read(source)
        spans = data["traceEvents"]
        title = title or describe_runs(data) or os.path.basename(os.fspath(source))
    else:
        spans = list(source)
    rows, first = _rows(spans)
    ends = [((end - first) / 1e3, label) for end, label in superstep_ends(spans)]
    return _figure(rows, ends, title or "pybsp timeline")


def superstep_ends(events: Iterable[dict[str, Any]]) -> list[tuple[float, str]]:
    """(time in the trace's microseconds, label) of each superstep's end,
    in time order: the moment the last rank left its exchange, and the call
    that ended it ("sync at prog.py:12 in step").  The exchanges of one
    superstep overlap in time (they all follow its barrier), which tells
    apart the supersteps of runs that share a trace file."""
    exchanges = sorted((event for event in events if event.get("ph") == "X" and event.get("name") == "exchange"),
                       key=lambda event: event["ts"])
    ends: list[list[Any]] = []          # [superstep, call, end]
    for event in exchanges:
        args = event.get("args", {})
        step, call, end = args.get("superstep"), args.get("call") or "sync", event["ts"] + event.get("dur", 0)
        if ends and ends[-1][:2] == [step, call] and event["ts"] <= ends[-1][2]:
            ends[-1][2] = max(ends[-1][2], end)
        else:
            ends.append([step, call, end])
    return sorted((end, f"{step}: {call}" if step is not None else call) for step, call, end in ends)


def _rows(events: list[dict[str, Any]]) -> tuple[dict[int, dict[str, list[tuple[float, float]]]], float]:
    """Per rank, per kind of span: (start, duration) in milliseconds from the
    first span; and the first span's start, in the trace's microseconds."""
    spans = [event for event in events if event.get("ph") == "X" and event.get("name") in COLOURS]
    if not spans:
        raise ValueError("nothing to draw: no compute, barrier or exchange spans in the trace")
    first = min(event["ts"] for event in spans)
    rows: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for event in spans:
        kinds = rows.setdefault(int(event["pid"]), {name: [] for name in COLOURS})
        kinds[event["name"]].append(((event["ts"] - first) / 1e3, event.get("dur", 0) / 1e3))
    return rows, first


def _figure(rows: dict[int, dict[str, list[tuple[float, float]]]], ends: list[tuple[float, str]], title: str) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the PNG timeline needs matplotlib: pip install matplotlib") from None
    ranks = sorted(rows)
    shown = min(LABELLED, len(ends))
    labelled = {round(i * (len(ends) - 1) / max(1, shown - 1)) for i in range(shown)}
    figure = Figure(figsize=(10, 2.2 + 0.45 * len(ranks)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, rank in enumerate(ranks):
        for name, colour in COLOURS.items():
            axes.broken_barh(rows[rank][name], (row - 0.4, 0.8), facecolors=colour,
                             label=name if row == 0 else None)
    for number, (moment, label) in enumerate(ends):
        axes.axvline(moment, color="#555555", linestyle="--", linewidth=0.7)
        if number in labelled:
            axes.text(moment, 0.98, label, transform=axes.get_xaxis_transform(), rotation=90, fontsize=6,
                      ha="right", va="top", color="#222222", bbox={"facecolor": "white", "alpha": 0.6,
                                                                   "edgecolor": "none", "pad": 0.5})
    axes.set_yticks(range(len(ranks)), [f"rank {rank}" for rank in ranks])
    axes.set_ylim(len(ranks) - 0.5, -0.5)
    axes.set_xlabel("time (ms); dashed: the end of a superstep, with the call that ended it")
    axes.set_title(title, loc="left")
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, frameon=False)
    return figure
