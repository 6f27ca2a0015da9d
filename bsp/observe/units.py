"""Durations, sizes and call sites written for people, in the profile's
table, the progress line and the benchmark's reports."""

from __future__ import annotations

import os


def short_site(site: str) -> str:
    """'file.py:12 in f' for a site 'some/dir/file.py:12 in f'."""
    path, _, rest = site.partition(":")
    return f"{os.path.basename(path)}:{rest}" if rest else site


def seconds(value: float) -> str:
    """A duration for people: '12.3 ms', '45.6 us', '1.23 s'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if abs(value) >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{value * 1e9:.3g} ns" if value else "0 s"


def nbytes(value: float) -> str:
    """A size for people: '512 B', '16 KiB', '4.2 MiB'."""
    for unit, scale in (("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if value >= scale:
            return f"{value / scale:.3g} {unit}"
    return f"{int(value)} B"


def percent(predicted: float, measured: float) -> str:
    """How far `predicted` is from `measured`, signed: '+3.1%'; 'n/a' for no measurement."""
    return f"{100 * (predicted - measured) / measured:+.1f}%" if measured > 0 else "n/a"
