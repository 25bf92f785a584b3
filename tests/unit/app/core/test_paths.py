"""Paths stored relative to the data folder: files and folders only, never built-in names or architectures."""

from __future__ import annotations

from pathlib import Path

from app.core.paths import stored_path, stored_settings
from dissect_core.config import DissectConfig


def test_a_path_under_the_data_folder_is_stored_relative_and_others_stay(tmp_path: Path) -> None:
    data = tmp_path / "data"
    assert stored_path(data / "probe-sets" / "ab", data) == "probe-sets/ab"
    assert stored_path(tmp_path / "elsewhere", data) == str(tmp_path / "elsewhere")
    assert stored_path("relative/already", data) == "relative/already"


def test_settings_store_and_resolve_only_their_files_and_folders(tmp_path: Path) -> None:
    data = tmp_path / "data"
    settings = {
        "model": "resnet18",
        "layers": ["fc"],
        "probe": str(data / "probe-sets" / "ab"),
        "concepts": "20k",
        "checkpoint": str(data / "checkpoints" / "0123" / "my.pt"),
        "labels_file": str(tmp_path / "labels.csv"),
        "similarity_params": {"top_k": 5},
    }
    stored = stored_settings(settings, data)
    assert stored == {
        **settings,
        "probe": "probe-sets/ab",
        "checkpoint": "checkpoints/0123/my.pt",
    }
    moved = tmp_path / "moved"
    assert DissectConfig.from_dict(stored, base_dir=moved).to_dict() == {
        **DissectConfig.from_dict(settings).to_dict(),
        "probe": str(moved / "probe-sets" / "ab"),
        "checkpoint": str(moved / "checkpoints" / "0123" / "my.pt"),
    }
    resolved = DissectConfig.from_dict({"probe": "cifar100", "model": "net.pt", "layers": ["fc"]}, base_dir=moved)
    assert (resolved.probe, resolved.model) == ("cifar100", str(moved / "net.pt"))
