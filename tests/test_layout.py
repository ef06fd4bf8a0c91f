"""The package map of docs/design.md holds in the code: imports point down the layers, no import
circle (counting imports inside functions and under ``TYPE_CHECKING``), no private name taken from
another package, and the simulator imports nothing of the exporter."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PACKAGE = ROOT / "dms_exporter"

#: Bottom to top: a module may import from its own layer and the layers below it, never above.
LAYERS: tuple[tuple[str, ...], ...] = (
    ("__init__", "errors", "model", "heap", "logs", "tasks", "simulator"),
    ("vocabulary",),
    ("exposition",),
    ("config",),
    ("dms",),
    ("polling",),
    ("exporter",),
    ("web",),
    ("__main__",),
)


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _modules() -> dict[str, Path]:
    return {_module_name(p): p for p in PACKAGE.rglob("*.py")}


def _imports(name: str, path: Path, known: set[str]) -> list[tuple[str, str, int]]:
    """Every import of ``path`` inside the package, wherever it stands: (module, name, line)."""
    is_package = path.name == "__init__.py"
    found = []
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found += [(a.name, "", node.lineno) for a in node.names if a.name in known]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = name.split(".") if is_package else name.split(".")[:-1]
                base = base[: len(base) - node.level + 1]
                target = ".".join([*base, node.module] if node.module else base)
            else:
                target = node.module or ""
            if not target.startswith("dms_exporter"):
                continue
            for alias in node.names:
                submodule = f"{target}.{alias.name}"
                if submodule in known:
                    found.append((submodule, "", node.lineno))
                else:
                    found.append((target, alias.name, node.lineno))
    return found


def _graph() -> dict[str, list[tuple[str, str, int]]]:
    modules = _modules()
    known = set(modules)
    return {name: _imports(name, path, known) for name, path in modules.items()}


def _top(module: str) -> str:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def _layer(module: str) -> int:
    top = _top(module)
    for i, names in enumerate(LAYERS):
        if top in names:
            return i
    raise AssertionError(f"{module} is in no layer of LAYERS: add it to the map in docs/design.md")


def test_every_module_has_a_layer_and_imports_only_downwards() -> None:
    wrong = []
    for module, imports in _graph().items():
        if _top(module) == "simulator":
            continue
        for target, _, line in imports:
            if _layer(target) > _layer(module):
                wrong.append(f"{module}:{line} imports {target} from a layer above")
    assert not wrong, "\n".join(wrong)


def test_no_import_circle_even_inside_functions() -> None:
    graph = {m: {t for t, _, _ in imps if t != m} for m, imps in _graph().items()}
    # A package's __init__ re-exporting its own modules is not a circle of ideas.
    for module, targets in graph.items():
        graph[module] = {t for t in targets if not module.startswith(t + ".")}
    circles = []
    state: dict[str, int] = {}
    stack: list[str] = []

    def visit(module: str) -> None:
        state[module] = 1
        stack.append(module)
        for target in sorted(graph.get(module, ())):
            if state.get(target) == 1:
                circles.append(" -> ".join([*stack[stack.index(target) :], target]))
            elif target not in state:
                visit(target)
        stack.pop()
        state[module] = 2

    for module in sorted(graph):
        if module not in state:
            visit(module)
    assert not circles, "\n".join(circles)


def test_no_private_name_from_another_package() -> None:
    wrong = []
    for module, imports in _graph().items():
        home = module.rsplit(".", 1)[0] if "." in module else module
        for target, name, line in imports:
            if not re.match(r"_[a-z]", name):
                continue
            target_home = (
                target
                if (PACKAGE / "/".join(target.split(".")[1:])).is_dir()
                else (target.rsplit(".", 1)[0])
            )
            if target_home != home:
                wrong.append(f"{module}:{line} imports {name} from {target}")
    assert not wrong, "\n".join(wrong)


def test_the_simulator_imports_nothing_of_the_exporter() -> None:
    wrong = [
        f"{module}:{line} imports {target}"
        for module, imports in _graph().items()
        if _top(module) == "simulator"
        for target, _, line in imports
        if _top(target) != "simulator"
    ]
    assert not wrong, "\n".join(wrong)


def test_design_md_shows_every_layer() -> None:
    design = (ROOT / "docs" / "design.md").read_text()
    for names in LAYERS:
        for name in names:
            if name != "__init__":
                label = f"`{name}/`" if (PACKAGE / name).is_dir() else f"`{name}.py`"
                assert label in design, f"docs/design.md's package map does not show {label}"
