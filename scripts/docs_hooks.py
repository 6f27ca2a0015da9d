"""mkdocs hooks (see mkdocs.yml): the README, which GitHub and PyPI show as
the project's front page, is the site's front page too, without a copy:
it becomes index.md, with its links into docs/ rewritten to be relative to
docs/, and its links to files outside docs/ (examples, scripts), which
the site does not hold, made plain text naming the file."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    text = (ROOT / "README.md").read_text()
    files.append(File.generated(config, "index.md", content=_relink(text)))
    return files


def _relink(text: str) -> str:
    """Links of the README, from the repository's root to docs/'s."""
    def relink(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        if target.startswith("docs/"):
            return f"[{label}]({target[len('docs/'):]})"
        return label if label.strip("`") == target else f"{label} (`{target}`)"
    return re.sub(r"\[([^\]]*)\]\(([^)\s]+)\)", relink, text)
