"""The package's import graph, read from the source with ``ast`` (every import, function-local ones too):
no cycle between modules, no domain module importing the CLI, and the lanes importing only downwards."""

from __future__ import annotations

import ast
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "vehicle_assist"
CLI = ("vehicle_assist.commands", "vehicle_assist.cli", "vehicle_assist.__main__")
RUNNERS = ("runtime", "parts", "replay")
"""What runs the lanes: no lane imports them."""
NEVER = {
    # a package -> packages it must never import (a lane never reaches up into what runs it)
    "perception": ("safety", "advisory", "speech") + RUNNERS,
    "knowledge": ("advisory", "speech", "perception") + RUNNERS,
    "safety": RUNNERS,
    "speech": RUNNERS,
    "advisory": RUNNERS,
}


def _modules() -> dict[str, Path]:
    out = {}
    for path in PACKAGE.rglob("*.py"):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        out[name] = path
    return out


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports (``from a import b`` counts ``a.b`` when that is a module)."""
    mods = _modules()
    graph: dict[str, set[str]] = {}
    for name, path in mods.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        deps: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Import):
                deps.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    up = package.split(".")[: len(package.split(".")) - node.level + 1]
                    base = ".".join(up + ([node.module] if node.module else []))
                for a in node.names:
                    deps.add(f"{base}.{a.name}" if f"{base}.{a.name}" in mods else base)
        graph[name] = {d for d in deps if d in mods and d != name}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on.discard(w)
                comp.append(w)
                if w == v:
                    break
            if len(comp) > 1:
                found.append(sorted(comp))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def _under(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_the_checker_sees_a_cycle_and_a_relative_import():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert "vehicle_assist.safety.alerts" in import_graph()["vehicle_assist.safety.lane"]


def test_no_module_imports_itself_back():
    assert cycles(import_graph()) == []


def test_no_domain_module_imports_the_cli():
    bad = [(m, d) for m, deps in import_graph().items() if not any(_under(m, c) for c in CLI)
           for d in deps if any(_under(d, c) for c in CLI)]
    assert bad == []


def test_lanes_import_only_downwards():
    bad = [(m, d) for m, deps in import_graph().items() for package, banned in NEVER.items()
           if _under(m, f"vehicle_assist.{package}") for d in deps if any(_under(d, f"vehicle_assist.{b}") for b in banned)]
    assert bad == []
