"""Import checks import-linter's contracts do not make: no import cycle anywhere in sweeper/ (between any two
modules, packages' __init__ included), and nothing imports the root package `sweeper` back (its version lives in
sweeper/version.py, at the bottom). Run by scripts/test; prints each cycle and exits 1 if any."""

from __future__ import annotations

import sys

import grimp


def cycles(graph: grimp.ImportGraph, package: str) -> list[list[str]]:
    """The import cycles among `package`'s modules: each strongly connected component of two or more (Tarjan)."""
    modules = sorted(m for m in graph.modules if m == package or m.startswith(package + "."))
    edges = {m: sorted(n for n in graph.find_modules_directly_imported_by(m) if n in modules) for m in modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(m: str) -> None:
        index[m] = low[m] = len(index)
        stack.append(m)
        on_stack.add(m)
        for n in edges[m]:
            if n not in index:
                visit(n)
                low[m] = min(low[m], low[n])
            elif n in on_stack:
                low[m] = min(low[m], index[n])
        if low[m] == index[m]:
            component = []
            while True:
                n = stack.pop()
                on_stack.discard(n)
                component.append(n)
                if n == m:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(10_000)
    for m in modules:
        if m not in index:
            visit(m)
    return found


def main(package: str = "sweeper") -> int:
    graph = grimp.build_graph(package)
    problems = [f"import cycle: {' <-> '.join(c)}" for c in cycles(graph, package)]
    problems += [f"{m} imports the root package {package} (import from {package}.version or the module itself)"
                 for m in sorted(graph.find_modules_that_directly_import(package))]
    for line in problems:
        print(line, file=sys.stderr)
    if not problems:
        print(f"import checks: no cycle in {package}/, nothing imports {package} back")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main(*sys.argv[1:]))
