"""The layer tables shipped in the package are current: one per architecture the upload catalogue offers, named by
the key of the installed torch, torchvision and timm and this package's architecture code, nothing else kept, and
resnet18's read back equal to a live trace. When these fail, the fix is the rebuild command they name.

Under library versions other than the ones the tables were built with (a fresh install that resolved a newer timm)
they skip, saying so: listings then trace, correctly but slowly, and a rebuild ships tables for those versions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from app.jobs.uploads.architectures import default_architecture_names
from dissect_core.models import targets
from dissect_core.models.layer_tables import (
    REBUILD_COMMAND,
    SHIPPED_DIR,
    SHIPPED_VERSIONS,
    library_versions,
    skeleton_layers_kept,
    table_key,
)
from dissect_core.models.targets import skeleton_layers

STALE = f"the shipped layer tables are stale for the installed libraries and code; rebuild them: {REBUILD_COMMAND}"


@pytest.fixture(autouse=True)
def _built_with_the_installed_libraries() -> None:
    """Skip, naming both, when the tables were built with other library versions than the installed ones."""
    built_with = json.loads(SHIPPED_VERSIONS.read_text(encoding="utf-8"))
    if built_with != library_versions():
        pytest.skip(f"shipped layer tables built with {built_with}, installed {library_versions()}: {REBUILD_COMMAND}")


def test_the_shipped_tables_are_the_catalogues_under_the_current_key() -> None:
    wanted = {table_key(name): name for name in default_architecture_names()}
    shipped = {path.stem for path in SHIPPED_DIR.glob("*.json")} - {SHIPPED_VERSIONS.stem}
    missing = sorted(name for key, name in wanted.items() if key not in shipped)
    left_over = len(shipped - set(wanted))
    example = f", e.g. {', '.join(missing[:3])}" if missing else ""
    assert not missing and not left_over, f"{STALE} ({len(missing)} missing{example}; {left_over} of other keys)"


def test_resnet18s_shipped_table_equals_a_live_trace(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traced = skeleton_layers("resnet18")
    monkeypatch.setattr(targets, "skeleton_layers", lambda _name: pytest.fail(STALE))
    assert skeleton_layers_kept("resnet18", tmp_path) == traced, STALE
    assert not any(tmp_path.iterdir())  # read from the package: nothing kept in the cache folder
