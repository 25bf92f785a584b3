"""The folders are the layers: each may import only itself and the layers below it (README, Layout)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
#: Each layer with the layers it may import besides itself; `dissect_core` never imports the app.
ALLOWED = {
    "dissect_core": set(),
    "app.core": {"dissect_core"},
    "app.persistence": {"dissect_core", "app.core"},
    "app.auth": {"dissect_core", "app.core", "app.persistence"},
    "app.read": {"dissect_core", "app.core", "app.persistence"},
    "app.jobs": {"dissect_core", "app.core", "app.persistence", "app.read", "app.auth"},
    "app.web": {"dissect_core", "app.core", "app.persistence", "app.read", "app.jobs", "app.auth"},
    "app.cli": {"dissect_core", "app.core", "app.persistence", "app.read", "app.jobs", "app.web", "app.auth"},
}


def layer_of(module: str) -> str | None:
    """Return the layer a dotted module name belongs to, or None for outside code."""
    if module == "dissect_core" or module.startswith("dissect_core."):
        return "dissect_core"
    parts = module.split(".")
    if parts[0] == "app":
        return ".".join(parts[:2]) if len(parts) > 1 else "app"
    return None


def imported_modules(path: Path) -> set[str]:
    """Return the absolute module names a file imports (at any depth, lazy imports included)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
    return names


SOURCES = sorted(p for package in ("app", "dissect_core") for p in (ROOT / package).rglob("*.py"))


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(ROOT)))
def test_imports_only_go_down_the_layers(path: Path) -> None:
    module = ".".join(path.relative_to(ROOT).with_suffix("").parts)
    own = layer_of(module)
    if own not in ALLOWED:
        assert path.name == "__init__.py", f"{path} sits outside every layer folder; move it into one"
        return
    allowed = ALLOWED[own] | {own}
    wrong = sorted(name for name in imported_modules(path) if layer_of(name) not in (None, "app", *allowed))
    assert not wrong, f"{module} ({own}) imports {wrong}; it may import only {sorted(allowed)}"
