"""The shape of the cds_service package: its parts import each other without cycles, and none imports the tests.

A part is a subpackage (`cds_service/api/`) or a top-level module (`cds_service/pipeline.py`). Imports are read
from the source with `ast`, all of them: module level, inside functions, and under `if TYPE_CHECKING:`.
"""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = "cds_service"
SOURCE = Path(__file__).resolve().parent.parent / PACKAGE
TESTS = Path(__file__).resolve().parent

# Cycles tolerated while they are being removed. Each entry is the exact set of parts in the cycle: a cycle
# that grows (a third part joins it) or any other cycle still fails. Delete an entry once it is fixed
# (test_known_cycles_still_exist says when). None today.
KNOWN_CYCLES: set[frozenset[str]] = set()


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(SOURCE.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _is_package(path: Path) -> bool:
    return path.name == "__init__.py"


def _imported_modules(path: Path) -> list[tuple[int, str]]:
    """Every module `path` imports, absolute dotted names, with the line; `from X import a` gives X.a as well as X
    (a may be a submodule)."""
    module = _module_name(path)
    # The package a relative import of level 1 starts from: the module's own package, or itself for an __init__.
    anchor = module.split(".") if _is_package(path) else module.split(".")[:-1]
    found: list[tuple[int, str]] = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = anchor[: len(anchor) - (node.level - 1)]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found.extend((node.lineno, f"{target}.{alias.name}") for alias in node.names if alias.name != "*")
    return found


def _part(dotted: str) -> str | None:
    """The part of cds_service a dotted module name falls in; None outside cds_service (or the package itself)."""
    names = dotted.split(".")
    if names[0] != PACKAGE or len(names) < 2:
        return None
    first = names[1]
    if (SOURCE / first).is_dir() or (SOURCE / f"{first}.py").is_file():
        return first
    return None  # `from .. import __version__`: a name in cds_service/__init__.py, not a part


def _sources() -> list[Path]:
    return sorted(SOURCE.rglob("*.py"))


def part_graph() -> dict[str, dict[str, list[str]]]:
    """part -> {imported part: ["file:line", ...]}, edges between different parts only."""
    graph: dict[str, dict[str, list[str]]] = {}
    for path in _sources():
        here = _part(_module_name(path))
        if here is None:
            continue
        edges = graph.setdefault(here, {})
        for line, dotted in _imported_modules(path):
            there = _part(dotted)
            where = f"{path.relative_to(SOURCE.parent)}:{line}"
            if there is not None and there != here and where not in edges.get(there, []):
                edges.setdefault(there, []).append(where)
    return graph


def strongly_connected(graph: dict[str, dict[str, list[str]]]) -> list[set[str]]:
    """Tarjan's algorithm: the components of more than one part, i.e. the import cycles."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[set[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in on_stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component: set[str] = set()
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.add(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(component)

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def a_cycle(graph: dict[str, dict[str, list[str]]], component: set[str], start: str) -> list[str]:
    """The shortest cycle from `start` through the component, the first part repeated at the end."""
    paths = {start: [start]}
    queue = [start]
    while queue:  # breadth first: the shortest way back to start
        node = queue.pop(0)
        for target in sorted(graph.get(node, {})):
            if target == start:
                return paths[node] + [start]
            if target in component and target not in paths:
                paths[target] = paths[node] + [target]
                queue.append(target)
    raise AssertionError(f"no cycle through {start} in {component}")


def cycles_of(graph: dict[str, dict[str, list[str]]], component: set[str]) -> list[list[str]]:
    """The shortest cycle through each part of the component, each cycle once (whatever part it is read from)."""
    cycles: list[list[str]] = []
    seen: set[tuple[str, ...]] = set()
    for start in sorted(component):
        cycle = a_cycle(graph, component, start)
        pivot = cycle.index(min(cycle))
        key = tuple(cycle[pivot:-1] + cycle[:pivot])
        if key not in seen:
            seen.add(key)
            cycles.append(cycle)
    return cycles


def describe(graph: dict[str, dict[str, list[str]]], cycle: list[str]) -> str:
    steps = [f"  {a} -> {b}   ({', '.join(graph[a][b][:3])})" for a, b in zip(cycle, cycle[1:], strict=False)]
    return " -> ".join(cycle) + "\n" + "\n".join(steps)


def test_the_parts_of_cds_service_import_each_other_without_cycles():
    graph = part_graph()
    assert {"api", "smart", "pipeline", "storage"} <= graph.keys()  # the parser found the package
    unexpected = [c for c in strongly_connected(graph) if frozenset(c) not in KNOWN_CYCLES]
    assert not unexpected, "import cycles between parts of cds_service:\n" + "\n".join(
        f"{sorted(component)}:\n" + "\n".join(describe(graph, cycle) for cycle in cycles_of(graph, component))
        for component in unexpected
    )


def test_known_cycles_still_exist():
    """An exception in KNOWN_CYCLES that no longer applies is removed, so the cycle cannot come back unnoticed."""
    cycles = {frozenset(c) for c in strongly_connected(part_graph())}
    fixed = KNOWN_CYCLES - cycles
    assert not fixed, f"these cycles are gone: delete them from KNOWN_CYCLES in {__file__}: {fixed}"


def _test_modules() -> set[str]:
    """Top-level names the tests' own modules are imported by (pytest puts tests/ on sys.path)."""
    names = {"tests", "conftest"}
    for entry in TESTS.iterdir():
        if entry.suffix == ".py":
            names.add(entry.stem)
        elif entry.is_dir() and (entry / "__init__.py").exists():
            names.add(entry.name)
    return names


def test_no_cds_service_module_imports_from_the_tests():
    test_modules = _test_modules()
    offending = [
        f"{path.relative_to(SOURCE.parent)}:{line}: imports {dotted}"
        for path in _sources()
        for line, dotted in _imported_modules(path)
        if dotted.split(".")[0] in test_modules
    ]
    assert not offending, "cds_service must not depend on the tests:\n" + "\n".join(offending)


def test_the_checker_sees_a_cycle():
    graph = {"a": {"b": ["a.py:1"]}, "b": {"c": ["b.py:1"]}, "c": {"a": ["c.py:1"]}, "d": {"a": ["d.py:1"]}}
    assert strongly_connected(graph) == [{"a", "b", "c"}]
    assert cycles_of(graph, {"a", "b", "c"}) == [["a", "b", "c", "a"]]


def test_relative_imports_resolve_to_their_parts():
    imported = {dotted for _, dotted in _imported_modules(SOURCE / "api" / "__init__.py")}
    assert {"cds_service.smart.routes", "cds_service.pipeline", "cds_service.api.auth"} <= imported
    assert _part("cds_service.smart.routes") == "smart"
    assert _part("cds_service.pipeline.Engine") == "pipeline"
    assert _part("cds_service.__version__") is None
