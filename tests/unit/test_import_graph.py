"""The package's modules import one another without a cycle.

Every module of ``pytest_gx10`` is parsed with :mod:`ast`; each import of a package module, at module
level or inside a function, is an edge (imports under ``if TYPE_CHECKING:`` are not run, so they are
not). ``from pytest_gx10.launch import docker`` is an edge to the submodule ``launch.docker``;
``from pytest_gx10.launch import Target`` one to the package ``launch``. A function-local import
dodges a cycle only until someone moves it to the top of the file, so it counts the same.
"""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

import pytest_gx10

PACKAGE = "pytest_gx10"
ROOT = Path(pytest_gx10.__file__).resolve().parent


def _modules() -> dict[str, Path]:
    """Dotted name -> file of every module of the package (a package is its ``__init__``)."""
    found = {}
    for path in sorted(ROOT.rglob("*.py")):
        parts = (PACKAGE, *path.relative_to(ROOT).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def _is_type_checking(test: ast.expr) -> bool:
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"
    )


def _imports(node: ast.AST) -> Iterator[ast.Import | ast.ImportFrom]:
    """Every import statement below ``node``, at any depth, except under ``if TYPE_CHECKING:``."""
    for child in ast.iter_child_nodes(node):
        if isinstance(child, ast.If) and _is_type_checking(child.test):
            for stmt in child.orelse:
                yield from _imports_of_stmt(stmt)
            continue
        if isinstance(child, ast.Import | ast.ImportFrom):
            yield child
        yield from _imports(child)


def _imports_of_stmt(stmt: ast.stmt) -> Iterator[ast.Import | ast.ImportFrom]:
    if isinstance(stmt, ast.Import | ast.ImportFrom):
        yield stmt
    yield from _imports(stmt)


def _resolve(module: str, is_package: bool, node: ast.ImportFrom) -> str:
    """The absolute module a ``from ... import`` names (relative imports included)."""
    if node.level == 0:
        return node.module or ""
    base = module.split(".") if is_package else module.split(".")[:-1]
    base = base[: len(base) - (node.level - 1)]
    return ".".join([*base, node.module] if node.module else base)


def import_graph() -> dict[str, set[str]]:
    """Module -> the package modules it imports."""
    modules = _modules()
    graph: dict[str, set[str]] = {name: set() for name in modules}
    for name, path in modules.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        is_package = path.name == "__init__.py"
        for node in _imports(tree):
            targets: list[str] = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                source = _resolve(name, is_package, node)
                for alias in node.names:
                    sub = f"{source}.{alias.name}"
                    targets.append(sub if sub in modules else source)
            graph[name].update(t for t in targets if t in modules and t != name)
    return graph


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One cycle of ``graph`` as ``[a, b, ..., a]``, or None when it has none."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph[node]):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for node in sorted(graph):
        if node not in state:
            found = visit(node)
            if found is not None:
                return found
    return None


def test_the_package_modules_import_each_other_without_a_cycle() -> None:
    """No module of the package reaches itself through the imports of others."""
    graph = import_graph()
    assert len(graph) > 30, sorted(graph)  # the walk found the package's modules
    cycle = find_cycle(graph)
    assert cycle is None, "import cycle: " + " -> ".join(cycle or [])


def test_the_settings_declaration_imports_only_leaf_modules() -> None:
    """options (the settings' declaration) imports nothing of the package but config, which imports
    nothing of it: profiles and settings can both import the declaration without closing a cycle."""
    graph = import_graph()
    assert graph["pytest_gx10.options"] == {"pytest_gx10.config"}
    assert graph["pytest_gx10.config"] == set()
    assert "pytest_gx10.options" in graph["pytest_gx10.profiles"]
    assert "pytest_gx10.options" in graph["pytest_gx10.settings"]


def test_the_graph_sees_function_level_imports_and_skips_type_checking_ones() -> None:
    """A cycle closed by an import inside a function is found; one under TYPE_CHECKING is not an edge."""
    graph = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": set()}
    assert find_cycle(graph) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from pytest_gx10.state import Gx10State\n"
        "else:\n"
        "    import pytest_gx10.launch\n"
        "def f():\n"
        "    from pytest_gx10.plugin import GX10_STATE\n"
    )
    names = [n.module if isinstance(n, ast.ImportFrom) else n.names[0].name for n in _imports(tree)]
    assert names == ["typing", "pytest_gx10.launch", "pytest_gx10.plugin"]


@pytest.mark.parametrize(
    ("module", "is_package", "source", "expected"),
    [
        ("pytest_gx10.launch.process", False, "from .boot import x", "pytest_gx10.launch.boot"),
        ("pytest_gx10.launch", True, "from .boot import x", "pytest_gx10.launch.boot"),
        ("pytest_gx10.launch.process", False, "from .. import x", "pytest_gx10"),
        ("pytest_gx10.fake.app", False, "from pytest_gx10.client import x", "pytest_gx10.client"),
    ],
)
def test_relative_imports_resolve_to_the_module_they_name(
    module: str, is_package: bool, source: str, expected: str
) -> None:
    """``from .x import y`` in a module and in a package's ``__init__`` name the right module."""
    node = ast.parse(source).body[0]
    assert isinstance(node, ast.ImportFrom)
    assert _resolve(module, is_package, node) == expected
