"""The layering README's "Layout" section states, checked on the source: who may import whom, and no cycles.

Every import counts, also those inside functions and under TYPE_CHECKING: a guarded or lazy import is still a
dependency, and hiding a loop behind one is what these rules exist to prevent.
"""

from __future__ import annotations

import ast
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"

# (importing package, forbidden package): parts that talk to a master only through the public API, and results
# that flow one way (measure -> report, never back; measure never needs the player).
FORBIDDEN = [
    (user, banned)
    for user in (
        "kubemark.master.controllers",
        "kubemark.master.scheduler",
        "kubemark.hollow",
        "kubemark.load",
        "kubemark.measure",
    )
    for banned in ("kubemark.master.apiserver", "kubemark.master.storage")
] + [
    ("kubemark.measure", "kubemark.load"),
    ("kubemark.measure", "kubemark.report"),
    ("kubemark.kube", "kubemark.master"),
    ("kubemark.client", "kubemark.master"),
]


def _modules() -> dict[str, Path]:
    out = {}
    for path in SRC.rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The kubemark modules `name` imports (a `from package import submodule` counts as the submodule)."""
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(anchor + ([base] if base else []))
            for alias in node.names:
                sub = f"{base}.{alias.name}"
                found.add(sub if sub in modules else base)
    return {m for m in found if m in modules and m != name}


def _graph() -> dict[str, set[str]]:
    modules = _modules()
    return {name: _imports(name, path, modules) for name, path in modules.items()}


def _within(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def test_layers_import_only_what_they_may() -> None:
    graph = _graph()
    violations = sorted(
        f"{user_module} imports {imported}"
        for user_module, imported_set in graph.items()
        for imported in imported_set
        for user, banned in FORBIDDEN
        if _within(user_module, user) and _within(imported, banned)
    )
    assert violations == []


def test_no_import_cycles() -> None:
    # A package's __init__ re-exporting its submodules (and they importing it) is how packages are made, not a
    # cycle between parts: edges between a package and its own submodules are left out.
    graph = {m: {d for d in deps if not (_within(d, m) or _within(m, d))} for m, deps in _graph().items()}
    cycles: list[str] = []
    state: dict[str, int] = {}  # 1 on the stack, 2 done
    stack: list[str] = []

    def visit(node: str) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append(" -> ".join([*stack[stack.index(dep) :], dep]))
            elif dep not in state:
                visit(dep)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node)
    assert cycles == []


def test_the_checker_sees_a_planted_violation(tmp_path: Path) -> None:
    # The rules above are only as good as the import scan: it must find lazy, guarded and relative imports.
    source = (
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from kubemark.report import model\n"
        "def f():\n    from ..load import config\n    import kubemark.master.apiserver.server\n"
    )
    path = tmp_path / "planted.py"
    path.write_text(source)
    modules = {m: Path() for m in ("kubemark.report.model", "kubemark.load.config", "kubemark.master.apiserver.server")}
    assert _imports("kubemark.measure.planted", path, modules) == set(modules)
