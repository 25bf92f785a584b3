"""Runs in every Ray worker process of the test session: registers the tiny random open_clip architecture there,
as the `tiny_clip` fixture does in the test process, once the worker imports open_clip (the probe actors do;
the block tasks never do, and importing it up front would cost each of them torchvision's and open_clip's
import, seconds on a loaded machine)."""

from __future__ import annotations

import importlib.abc
import importlib.machinery
import sys
from types import ModuleType

from tests.conftest import FIXTURES


class _RegisterOnImport(importlib.abc.MetaPathFinder):
    """Finds open_clip as usual and registers tests/fixtures/tiny_clip.json once its module has run."""

    def find_spec(
        self, fullname: str, path: object, target: ModuleType | None = None
    ) -> importlib.machinery.ModuleSpec | None:
        """Return open_clip's own spec, its loader wrapped to register the tiny architecture; None otherwise."""
        if fullname != "open_clip":
            return None
        sys.meta_path.remove(self)
        spec = importlib.machinery.PathFinder.find_spec(fullname)
        if spec is None or spec.loader is None:
            return spec
        loader = spec.loader
        run_module = loader.exec_module

        def exec_module(module: ModuleType) -> None:
            run_module(module)
            module.add_model_config(str(FIXTURES / "tiny_clip.json"))

        loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def register_tiny_clip() -> None:
    """Register tests/fixtures/tiny_clip.json with open_clip in this worker: now when open_clip is loaded, else
    when it is first imported."""
    if "open_clip" in sys.modules:
        sys.modules["open_clip"].add_model_config(str(FIXTURES / "tiny_clip.json"))
    else:
        sys.meta_path.insert(0, _RegisterOnImport())
