"""No import circles among `app` and `model` modules.

A module that imports, directly or through others, a module that imports it is a circle
(issue 29). Imports under `TYPE_CHECKING` count: the graph is grimp's, as import-linter
builds it, so a circle hidden behind an annotation-only import fails here too. The
`acyclic_siblings` contract in pyproject.toml checks packages; this checks modules.
"""

from __future__ import annotations

import grimp

ROOTS = ("app", "model")


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The graph's strongly connected components of more than one module, each sorted.

    Tarjan's algorithm, iterative so that a deep import chain cannot hit Python's
    recursion limit.
    """
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(graph.modules):
        if root in index:
            continue
        work = [(root, iter(sorted(graph.find_modules_directly_imported_by(root))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append(
                        (child, iter(sorted(graph.find_modules_directly_imported_by(child))))
                    )
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))
    return sorted(cycles)


def _describe(graph: grimp.ImportGraph, cycle: list[str]) -> str:
    members = set(cycle)
    edges = [
        f"    {m} -> {', '.join(sorted(members & graph.find_modules_directly_imported_by(m)))}"
        for m in cycle
    ]
    return "\n".join([f"  circle of {len(cycle)} modules:", *edges])


def test_no_import_cycles_among_app_and_model_modules() -> None:
    graph = grimp.build_graph(*ROOTS, cache_dir=None)
    cycles = import_cycles(graph)
    report = "\n".join(_describe(graph, c) for c in cycles)
    assert not cycles, f"import circles (break them by direction):\n{report}"


def test_the_checker_finds_direct_and_indirect_circles() -> None:
    graph = grimp.ImportGraph()
    for name in ("p", "p.a", "p.b", "p.c", "p.d", "p.e"):
        graph.add_module(name)
    # A three-module circle, a two-module one, and a chain into it that is no circle.
    for importer, imported in [
        ("p.a", "p.b"),
        ("p.b", "p.c"),
        ("p.c", "p.a"),
        ("p.d", "p.e"),
        ("p.e", "p.d"),
        ("p", "p.a"),
    ]:
        graph.add_import(importer=importer, imported=imported)
    assert import_cycles(graph) == [["p.a", "p.b", "p.c"], ["p.d", "p.e"]]
    graph.remove_import(importer="p.c", imported="p.a")
    assert import_cycles(graph) == [["p.d", "p.e"]]
