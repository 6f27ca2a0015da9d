"""mkdocs hooks (see mkdocs.yml): the site shows the repository's own files,
without copies, and its pages link as they do on GitHub.

- README.md, the project's front page on GitHub and PyPI, is the site's
  front page (index.md); CHANGELOG.md is changelog.md; every program in
  examples/ is a page examples/NAME.md showing its source, and
  examples/index.md lists them with the first line of their docstrings.
- Every page writes its links relative to its own file in the repository,
  so that they work on GitHub (docs/guide/x.md links ../../examples/hello.py).
  On the site they point at the pages above: examples/NAME.py becomes
  examples/NAME.md, CHANGELOG.md changelog.md, README.md index.md, and
  docs/PAGE the page itself.  A link to another file outside docs/
  (scripts/, tests/), which the site does not hold, becomes plain text
  naming the file, so that the build's link check (--strict) still sees
  every link it keeps.
"""

from __future__ import annotations

import ast
import posixpath
import re
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"
LINK = re.compile(r"\[([^\]]*)\]\(([^)\s]+)\)")
# Generated pages: site path -> the repository file it shows.
FRONT_PAGES = {"index.md": "README.md", "changelog.md": "CHANGELOG.md"}


def example_files() -> list[Path]:
    """The programs of examples/ (the baselines folder included) and its batch script."""
    return sorted(path for path in EXAMPLES.rglob("*") if path.suffix in (".py", ".sbatch"))


def site_page_of_example(path: Path) -> str:
    return "examples/" + path.relative_to(EXAMPLES).with_suffix(".md").as_posix()


def on_files(files: Any, config: Any) -> Any:
    from mkdocs.structure.files import File

    for site_path, source in FRONT_PAGES.items():
        files.append(File.generated(config, site_path, content=(ROOT / source).read_text()))
    for path in example_files():
        files.append(File.generated(config, site_page_of_example(path), content=_example_page(path)))
    files.append(File.generated(config, "examples/index.md", content=_examples_index()))
    return files


def on_page_markdown(markdown: str, page: Any, config: Any, files: Any) -> str:
    site_path = page.file.src_uri
    if site_path.startswith("examples/"):
        return markdown
    return relink(markdown, repository_path(site_path), site_path)


def repository_path(site_path: str) -> str:
    """Where a page's text lives in the repository."""
    return FRONT_PAGES.get(site_path, "docs/" + site_path)


def relink(text: str, source: str, site_path: str) -> str:
    """The links of `text`, written relative to the repository file `source`,
    made relative to the site page `site_path`."""
    here = posixpath.dirname(site_path)

    def relink_one(match: re.Match[str]) -> str:
        label, target = match.group(1), match.group(2)
        if re.match(r"[a-z]+:|#", target):
            return match.group(0)
        path, hash_, anchor = target.partition("#")
        in_repository = posixpath.normpath(posixpath.join(posixpath.dirname(source), path))
        page = _site_page(in_repository)
        if page is None:
            return label if label.strip("`") == in_repository else f"{label} (`{in_repository}`)"
        return f"[{label}]({posixpath.relpath(page, here or '.')}{hash_}{anchor})"
    return LINK.sub(relink_one, text)


def _site_page(in_repository: str) -> str | None:
    """The site's page for a repository path, or None where the site has none."""
    if in_repository.startswith("docs/"):
        return in_repository[len("docs/"):]
    for site_path, source in FRONT_PAGES.items():
        if in_repository == source:
            return site_path
    if in_repository in ("examples", "examples/"):
        return "examples/index.md"
    path = ROOT / in_repository
    if path.is_relative_to(EXAMPLES) and path in example_files():
        return site_page_of_example(path)
    return None


def _example_page(path: Path) -> str:
    name, up = path.relative_to(ROOT).as_posix(), _up(path)
    language = "python" if path.suffix == ".py" else "bash"
    return (f"# {name}\n\n[All the examples]({up}index.md); what each shows and costs: the guide's "
            f"[gallery]({up}../guide/getting-started.md#examples).\n\n"
            f"```{language}\n{path.read_text()}```\n")


def _up(path: Path) -> str:
    """From an example's page back to examples/ on the site."""
    return "../" * (len(path.relative_to(EXAMPLES).parts) - 1)


def _examples_index() -> str:
    lines = ["# Examples", "",
             "Every program of `examples/`, each checked against a serial answer; the guide's "
             "[gallery](../guide/getting-started.md#examples) says what each shows and costs.", ""]
    for path in example_files():
        lines.append(f"- [`{path.relative_to(EXAMPLES).as_posix()}`]({site_page_of_example(path)[len('examples/'):]})"
                     f"{_summary(path)}")
    return "\n".join(lines) + "\n"


def _summary(path: Path) -> str:
    """': ' and the first line of a program's docstring, or nothing."""
    if path.suffix != ".py":
        return ": a batch script for SLURM's sbatch"
    docstring = ast.get_docstring(ast.parse(path.read_text()))
    return f": {docstring.splitlines()[0]}" if docstring else ""
