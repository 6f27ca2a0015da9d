"""Sections of docs/benchmarks.md that other scripts than scripts/bench
write (between markers), kept when scripts/bench rewrites the rest."""

from __future__ import annotations

import re

BEGIN, END = "<!-- begin: {} -->", "<!-- end: {} -->"


def splice(text: str, name: str, section: str) -> str:
    """`text` with the section `name` replaced by `section` (appended if absent)."""
    block = f"{BEGIN.format(name)}\n{section.rstrip()}\n{END.format(name)}\n"
    pattern = re.compile(re.escape(BEGIN.format(name)) + r".*?" + re.escape(END.format(name)) + r"\n?", re.S)
    if pattern.search(text):
        return pattern.sub(lambda _: block, text)
    return text.rstrip("\n") + "\n\n" + block


def carried(old: str, new: str) -> str:
    """`new` with every marked section of `old` carried over."""
    for match in re.finditer(r"<!-- begin: (.+?) -->\n(.*?)<!-- end: \1 -->", old, re.S):
        new = splice(new, match.group(1), match.group(2))
    return new
