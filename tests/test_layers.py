"""The package's import graph: no cycle, and every import points down the layers (CLI -> API -> ... -> records).

Read with ``ast`` over registry/zoo, every import counted: module level, function level (lazy) and
``TYPE_CHECKING`` blocks alike, so a lazy import cannot hide an upward dependency. Nothing is imported.
"""
from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "registry" / "zoo"

# Bottom to top: a module may import its own layer (without a cycle) and the layers below it, never above.
# Each entry is a module name or a package prefix ending in "."; every module of zoo must fall in one layer.
LAYERS: list[tuple[str, tuple[str, ...]]] = [
    ("base", ("zoo.errors", "zoo._names", "zoo._record", "zoo._digest", "zoo._distribution", "zoo.metrics", "zoo._atomic",
              "zoo.events")),
    ("records", ("zoo.records", "zoo.labels", "zoo.images", "zoo.transforms", "zoo.architectures", "zoo.gates")),
    ("store/onnx/runtime/plugins", ("zoo.store", "zoo.store.", "zoo.onnx", "zoo.onnx.", "zoo.runtime", "zoo.runtime.",
                                    "zoo.plugins", "zoo._plugin_check", "zoo._classify")),
    ("registry", ("zoo._registry", "zoo._resolve", "zoo._store_guard", "zoo._artifact_meta", "zoo._refs", "zoo._open",
                  "zoo._inventory", "zoo._eval_options", "zoo._promotion", "zoo._offline")),
    ("pipelines", ("zoo._exporting", "zoo._register_model", "zoo._copying", "zoo.parity", "zoo.parity.", "zoo.bench",
                   "zoo.bench.", "zoo.convert", "zoo.convert.", "zoo.weights", "zoo.weights.", "zoo.testing", "zoo.testing.",
                   "zoo.evaluation", "zoo.evaluation.", "zoo._promote")),
    ("services", ("zoo.serve", "zoo.serve.", "zoo.ui", "zoo.ui.", "zoo.deploy", "zoo.deploy.")),
    ("api", ("zoo",)),
    ("cli", ("zoo.cli", "zoo.cli.", "zoo.__main__")),
]

KNOWN: set[tuple[str, str]] = set()  # no exception: every edge points down


def module_names(root: Path) -> dict[str, tuple[Path, bool]]:
    """Dotted name -> (file, is_package) for every module under ``root`` (a package folder)."""
    found = {}
    for path in sorted(root.rglob("*.py")):
        parts = list(path.relative_to(root.parent).with_suffix("").parts)
        is_package = parts[-1] == "__init__"
        found[".".join(parts[:-1] if is_package else parts)] = (path, is_package)
    return found


def import_graph(root: Path) -> dict[str, set[str]]:
    """Module -> the modules of the same package it imports, anywhere in its body."""
    modules = module_names(root)
    top = root.name
    graph: dict[str, set[str]] = {}
    for name, (path, is_package) in modules.items():
        package = name if is_package else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
            if isinstance(node, ast.Import):
                targets.update(alias.name for alias in node.names)
            elif isinstance(node, ast.ImportFrom):
                if node.level:
                    base = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                    origin = ".".join(base + ([node.module] if node.module else []))
                else:
                    origin = node.module or ""
                for alias in node.names:  # `from . import x` imports the submodule x when there is one
                    sub = f"{origin}.{alias.name}"
                    targets.add(sub if sub in modules else origin)
        graph[name] = {t for t in targets if t in modules and t != name and (t == top or t.startswith(top + "."))}
    return graph


def layer_of(module: str) -> int:
    best = None
    for index, (_, members) in enumerate(LAYERS):
        for member in members:
            if module == member or (member.endswith(".") and module.startswith(member)):
                length = len(member)
                if best is None or length > best[0]:
                    best = (length, index)
    if best is None:
        raise KeyError(module)
    return best[1]


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                on_stack.discard(member)
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def violations(graph: dict[str, set[str]]) -> set[tuple[str, str]]:
    """Every edge that points up the layers or lies on a cycle."""
    bad = {(src, dst) for src, dsts in graph.items() for dst in dsts if layer_of(dst) > layer_of(src)}
    for component in cycles(graph):
        members = set(component)
        bad |= {(src, dst) for src in component for dst in graph[src] if dst in members}
    return bad


@pytest.fixture(scope="module")
def graph() -> dict[str, set[str]]:
    return import_graph(PACKAGE)


def test_every_module_has_a_layer(graph):
    unplaced = sorted(m for m in graph if not _placed(m))
    assert not unplaced, f"add these modules to a layer in tests/test_layers.py: {unplaced}"


def _placed(module: str) -> bool:
    try:
        layer_of(module)
    except KeyError:
        return False
    return True


def test_no_cycle_and_no_upward_import(graph):
    found = violations(graph) - KNOWN
    described = [f"{src} ({LAYERS[layer_of(src)][0]}) -> {dst} ({LAYERS[layer_of(dst)][0]})" for src, dst in sorted(found)]
    assert not found, "imports that close a cycle or point up the layers:\n" + "\n".join(described)


def test_the_checker_finds_what_it_looks_for(tmp_path):
    """A package with a cycle (a <-> b, through a function-level import) and an upward import is caught."""
    pkg = tmp_path / "zoo"
    (pkg / "cli").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "errors.py").write_text("def f():\n    from .cli import main\n")  # base -> cli: upward, lazily
    (pkg / "records.py").write_text("from . import labels\n")
    (pkg / "labels.py").write_text("def g():\n    from .records import x\n")
    (pkg / "cli" / "__init__.py").write_text("main = 1\n")
    found = violations(import_graph(pkg))
    assert found == {("zoo.errors", "zoo.cli"), ("zoo.records", "zoo.labels"), ("zoo.labels", "zoo.records")}
