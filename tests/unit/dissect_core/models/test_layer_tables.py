"""Kept layer tables: named by the architecture, the libraries' versions and this package's architecture code, so
an upgrade traces again; a table read back equals the traced one; a folder that cannot be written keeps nothing;
a shipped table is read before the cache folder, one of another key is not, and a rebuild replaces the folder."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from dissect_core.errors import DissectError
from dissect_core.models import layer_tables, targets
from dissect_core.models.layer_tables import SUBFOLDER, skeleton_layers_kept, table_key, write_shipped_tables
from dissect_core.models.targets import skeleton_layers


@pytest.fixture(autouse=True)
def _shipped_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Ship no tables but what a test writes in tmp_path/shipped, so the cache folder's path is the one tested."""
    monkeypatch.setattr(layer_tables, "SHIPPED_DIR", tmp_path / "shipped")


def test_the_key_changes_with_the_architecture_and_a_librarys_version(monkeypatch: pytest.MonkeyPatch) -> None:
    before = table_key("resnet18")
    assert table_key("resnet34") != before
    monkeypatch.setattr(layer_tables, "_version", lambda library: "0.0" if library == "torchvision" else "1.0")
    assert table_key("resnet18") != before


def test_a_kept_table_reads_back_as_traced(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traced = skeleton_layers("resnet18")
    assert skeleton_layers_kept("resnet18", tmp_path) == traced
    assert len(list((tmp_path / SUBFOLDER).glob("*.json"))) == 1
    monkeypatch.setattr(targets, "skeleton_layers", lambda _name: pytest.fail("traced again"))
    assert skeleton_layers_kept("resnet18", tmp_path) == traced  # read back this time


def test_an_unwritable_cache_folder_keeps_nothing_and_still_lists(tmp_path: Path) -> None:
    blocked = tmp_path / "file"
    blocked.write_text("not a folder")
    assert skeleton_layers_kept("resnet18", blocked) == skeleton_layers("resnet18")


def test_a_shipped_table_is_read_before_the_cache_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    traced = skeleton_layers("resnet18")
    write_shipped_tables(["resnet18"], tmp_path / "shipped")
    kept = tmp_path / "cache" / SUBFOLDER / f"{table_key('resnet18')}.json"
    kept.parent.mkdir(parents=True)
    kept.write_text('{"model": "resnet18", "layers": [["other", "Kept", null]]}')
    monkeypatch.setattr(targets, "skeleton_layers", lambda _name: pytest.fail("traced though shipped"))
    assert skeleton_layers_kept("resnet18", tmp_path / "cache") == traced


def test_a_shipped_table_of_another_key_is_not_found(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    write_shipped_tables(["resnet18"], tmp_path / "shipped")
    monkeypatch.setattr(layer_tables, "_version", lambda library: "0.0")  # as after an upgrade
    assert skeleton_layers_kept("resnet18", tmp_path / "cache") == skeleton_layers("resnet18")
    assert len(list((tmp_path / "cache" / SUBFOLDER).glob("*.json"))) == 1  # traced and kept


def test_a_rebuild_replaces_the_shipped_folders_contents(tmp_path: Path) -> None:
    folder = tmp_path / "shipped"
    folder.mkdir()
    (folder / "an-old-key.json").write_text("{}")
    total = write_shipped_tables(["resnet18"], folder)
    table, built_with = sorted(folder.iterdir(), key=lambda path: path.name != f"{table_key('resnet18')}.json")
    assert table.name == f"{table_key('resnet18')}.json"
    assert json.loads(built_with.read_text()) == layer_tables.library_versions()
    assert total == table.stat().st_size + built_with.stat().st_size
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shipped"]  # no building folder left


def test_a_rebuild_that_cannot_trace_an_architecture_changes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "shipped"
    write_shipped_tables(["resnet18"], folder)
    before = sorted(path.name for path in folder.iterdir())
    with pytest.raises(DissectError, match="unknown model"):
        write_shipped_tables(["resnet18", "resnet_nineteen"], folder)
    assert sorted(path.name for path in folder.iterdir()) == before
    assert sorted(path.name for path in tmp_path.iterdir()) == ["shipped"]
