"""The import graph of bsp and mpi_backend, read statically with grimp (the
library import-linter is built on): its circles (strongly connected
components of more than one module), and with --edges every arrow.

    .venv/bin/python scripts/import_graph.py            # circles; exit 1 if any
    .venv/bin/python scripts/import_graph.py --edges    # and the arrows, one per line

Imports under `if TYPE_CHECKING:` count as the lint contract counts them:
they are arrows too.  Function-local imports count as well (grimp reads
every import statement), so a circle cannot hide inside a function.
"""

from __future__ import annotations

import argparse
import sys

import grimp

PACKAGES = ("bsp", "mpi_backend")


def edges(graph: grimp.ImportGraph) -> dict[str, set[str]]:
    """module -> the modules of PACKAGES it imports."""
    return {module: {target for target in graph.find_modules_directly_imported_by(module)
                     if target.split(".")[0] in PACKAGES}
            for module in graph.modules if module.split(".")[0] in PACKAGES}


def circles(arrows: dict[str, set[str]]) -> list[list[str]]:
    """Tarjan's strongly connected components with more than one module."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(module: str) -> None:
        index[module] = low[module] = len(index)
        stack.append(module)
        on_stack.add(module)
        for target in sorted(arrows.get(module, ())):
            if target not in index:
                visit(target)
                low[module] = min(low[module], low[target])
            elif target in on_stack:
                low[module] = min(low[module], index[target])
        if low[module] == index[module]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == module:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for module in sorted(arrows):
        if module not in index:
            visit(module)
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--edges", action="store_true", help="print every arrow, 'a -> b'")
    options = parser.parse_args()
    graph = grimp.build_graph(*PACKAGES, cache_dir=None)
    arrows = edges(graph)
    if options.edges:
        for module in sorted(arrows):
            for target in sorted(arrows[module]):
                print(f"{module} -> {target}")
    found = circles(arrows)
    print(f"{len(arrows)} modules, {sum(map(len, arrows.values()))} arrows, {len(found)} circle(s)")
    for component in found:
        print(f"circle of {len(component)}: {', '.join(component)}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
