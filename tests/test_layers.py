"""The project's import graph (read from the source with ``ast``, nothing imported): no import
circle between modules, and the library never imports the API nor the CLI that registers it."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("biometric", "api", "benchmarks")


def _module(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _graph() -> dict[str, set[str]]:
    """module -> the project modules it imports (at any depth in the file: a lazy import inside
    a function is still a dependency)."""
    modules = {_module(p): p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        deps = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                targets = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                targets = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            else:
                continue
            for t in targets:
                # the deepest project module the name resolves to
                while t and t not in modules:
                    t = t.rpartition(".")[0]
                if t and t != name:
                    deps.add(t)
        graph[name] = deps
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
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
        for w in graph.get(v, ()):
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


def _is_package_parent(a: str, b: str) -> bool:
    return b.startswith(a + ".") or a.startswith(b + ".")


def test_no_import_circle() -> None:
    graph = _graph()
    # A package's __init__ naming its own submodules is not a circle between jobs.
    graph = {m: {d for d in deps if not _is_package_parent(m, d)} for m, deps in graph.items()}
    assert _cycles(graph) == []


def _importers(forbidden: str, exempt_cli: bool) -> dict[str, list[str]]:
    offenders = {m: sorted(d for d in deps if d == forbidden or d.startswith(forbidden + "."))
                 for m, deps in _graph().items()
                 if m.startswith("biometric")
                 and not (exempt_cli and m.rpartition(".")[2] == "cli")}
    return {m: d for m, d in offenders.items() if d}


def test_nothing_under_biometric_imports_the_api() -> None:
    # Not even the command line: the API adds ``serve`` and ``keys`` through the
    # ``biometric.commands`` entry point (pyproject.toml).
    assert _importers("api", exempt_cli=False) == {}


def test_the_library_does_not_import_the_command_line() -> None:
    # Command-line modules (``cli``) are edges like the API; sub-command modules register
    # themselves on ``biometric.cli``'s app.
    assert _importers("biometric.cli", exempt_cli=True) == {}


def test_the_api_commands_are_registered_through_the_entry_point() -> None:
    from typer.main import get_command

    from biometric.cli import app

    assert {"serve", "keys"} <= set(get_command(app).commands)  # type: ignore[attr-defined]


def test_the_checker_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
