"""A profiled run's timeline as a PNG picture: one row per rank, its
supersteps' compute, barrier and exchange spans in colour (the same spans as
the Chrome trace, see bsp.observe.trace).

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


def plot(source: Profile | PathLike | Iterable[dict[str, Any]], png: PathLike, title: str | None = None) -> None:
    """Draw the timeline of `source` (a Profile, a trace file written by
    bsp.observe.trace, or its events) into the PNG file `png`.  Costs O(spans), and
    about a second of matplotlib for thousands of them.  Raises ImportError
    when matplotlib is missing, ValueError when `source` has no spans,
    OSError if a file cannot be read or written."""
    if isinstance(source, Profile):
        spans = trace_events(source)
        title = title or f"{source.program}: {source.nprocs} ranks, {source.backend} backend"
    elif isinstance(source, (str, os.PathLike)):
        data = read(source)
        spans = data["traceEvents"]
        title = title or describe_runs(data) or os.path.basename(os.fspath(source))
    else:
        spans = list(source)
    rows = _rows(spans)
    figure = _figure(rows, title or "pybsp timeline")
    figure.savefig(png, dpi=120)


def _rows(events: list[dict[str, Any]]) -> dict[int, dict[str, list[tuple[float, float]]]]:
    """Per rank, per kind of span: (start, duration) in milliseconds from the
    first span."""
    spans = [event for event in events if event.get("ph") == "X" and event.get("name") in COLOURS]
    if not spans:
        raise ValueError("nothing to draw: no compute, barrier or exchange spans in the trace")
    first = min(event["ts"] for event in spans)
    rows: dict[int, dict[str, list[tuple[float, float]]]] = {}
    for event in spans:
        kinds = rows.setdefault(int(event["pid"]), {name: [] for name in COLOURS})
        kinds[event["name"]].append(((event["ts"] - first) / 1e3, event.get("dur", 0) / 1e3))
    return rows


def _figure(rows: dict[int, dict[str, list[tuple[float, float]]]], title: str) -> Any:
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure
    except ImportError:
        raise ImportError("the PNG timeline needs matplotlib: pip install matplotlib") from None
    ranks = sorted(rows)
    figure = Figure(figsize=(10, 1.2 + 0.45 * len(ranks)), layout="constrained")
    FigureCanvasAgg(figure)
    axes = figure.add_subplot()
    for row, rank in enumerate(ranks):
        for name, colour in COLOURS.items():
            axes.broken_barh(rows[rank][name], (row - 0.4, 0.8), facecolors=colour,
                             label=name if row == 0 else None)
    axes.set_yticks(range(len(ranks)), [f"rank {rank}" for rank in ranks])
    axes.set_ylim(len(ranks) - 0.5, -0.5)
    axes.set_xlabel("time (ms)")
    axes.set_title(title, loc="left")
    axes.legend(loc="lower right", bbox_to_anchor=(1.0, 1.0), ncol=3, frameon=False)
    return figure
