"""The package's import graph: no circle, and training never reaches into sizing.

Worked out from the source (every ``import boneage...`` and ``from boneage...
import`` statement, at module level or inside a function), not by importing.
"""

from __future__ import annotations

import ast
from pathlib import Path

import boneage

PACKAGE = Path(boneage.__file__).parent
#: The modules that run TensorFlow: they may not import the sizing package.
TENSORFLOW_MODULES = {"train", "data", "models", "distribute", "predict"}


def _module(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, modules: set[str]) -> set[str]:
    """The boneage modules ``path`` imports (a name imported from a package counts as its
    submodule where one of that name exists)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names if a.name.startswith("boneage")}
        elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("boneage"):
            for a in node.names:
                sub = f"{node.module}.{a.name}"
                found.add(sub if sub in modules else node.module)
    return found & modules


def graph() -> dict[str, set[str]]:
    files = {_module(p): p for p in PACKAGE.rglob("*.py")}
    return {m: _imports(p, set(files)) - {m} for m, p in files.items()}


def test_no_import_circle():
    edges = graph()
    done: set[str] = set()

    def visit(node: str, path: list[str]) -> None:
        if node in path:
            raise AssertionError("import circle: " + " -> ".join(path[path.index(node) :] + [node]))
        if node in done:
            return
        for nxt in sorted(edges.get(node, ())):
            visit(nxt, [*path, node])
        done.add(node)

    for module in sorted(edges):
        visit(module, [])


def test_tensorflow_modules_do_not_import_sizing():
    edges = graph()
    for name in TENSORFLOW_MODULES:
        sizing = {m for m in edges[f"boneage.{name}"] if m.startswith("boneage.memory")}
        assert not sizing, f"boneage.{name} imports {sorted(sizing)}"
    assert "boneage.memory.batch" in edges["boneage.cli.train"]  # the CLI resolves auto


def test_the_graph_reads_what_the_source_says():
    """The scan itself: sizing imports training (the probe), and the node plan the estimate."""
    edges = graph()
    assert "boneage.train" in edges["boneage.memory.measure"]
    assert "boneage.memory.model" in edges["boneage.memory.node"]
