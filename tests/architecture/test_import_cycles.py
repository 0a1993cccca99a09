"""No import cycles anywhere in the workspace's packages.

import-linter (``make lint``) holds the layers; this holds what it does not: that no module
reaches itself through its imports, function-local and ``TYPE_CHECKING`` ones included
(grimp, import-linter's graph, sees them all), so no cycle hides behind a late import.
"""

from __future__ import annotations

import grimp

PACKAGES = (
    "reelpolicy_contracts",
    "reelpolicy_common",
    "reelpolicy_policy",
    "reelpolicy_ingest",
    "reelpolicy_registry",
    "reelpolicy_rules",
    "reelpolicy_notify",
    "reelpolicy_devstack",
    "reelpolicy_datagen",
)


def import_cycles(graph: grimp.ImportGraph) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), plus modules
    importing themselves."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def imports_of(module: str) -> list[str]:
        return sorted(graph.find_modules_directly_imported_by(module))

    def visit(root: str) -> None:
        # Iterative, so deep import chains cannot exhaust the recursion limit.
        work = [(root, iter(imports_of(root)))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            module, imported = work[-1]
            for other in imported:
                if other not in index:
                    index[other] = low[other] = len(index)
                    stack.append(other)
                    on_stack.add(other)
                    work.append((other, iter(imports_of(other))))
                    break
                if other in on_stack:
                    low[module] = min(low[module], index[other])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[module])
                if low[module] == index[module]:
                    component = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        component.append(member)
                        if member == module:
                            break
                    if len(component) > 1 or module in imports_of(module):
                        cycles.append(sorted(component))

    for module in sorted(graph.modules):
        if module not in index:
            visit(module)
    return cycles


def test_the_checker_finds_a_cycle() -> None:
    graph = grimp.ImportGraph()
    for module in ("a", "a.b", "a.c", "a.d"):
        graph.add_module(module)
    graph.add_import(importer="a.b", imported="a.c")
    graph.add_import(importer="a.c", imported="a.b")
    graph.add_import(importer="a.d", imported="a.b")
    assert import_cycles(graph) == [["a.b", "a.c"]]


def test_no_package_has_an_import_cycle() -> None:
    graph = grimp.build_graph(*PACKAGES)
    cycles = import_cycles(graph)
    chains = [" -> ".join(c) for c in cycles]
    assert not cycles, "import cycles:\n" + "\n".join(chains)
