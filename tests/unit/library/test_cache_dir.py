"""The one cache folder default: the platform's user cache folder, or NEURON_ATLAS_CACHE_DIR for library and app."""

from __future__ import annotations

from pathlib import Path

import pytest
from platformdirs import user_cache_dir

from app.core.config import Settings
from dissect_core import default_cache_dir


def test_the_default_is_the_platforms_user_cache_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("NEURON_ATLAS_CACHE_DIR", raising=False)
    assert default_cache_dir() == Path(user_cache_dir("neuron-atlas", appauthor=False))


def test_the_environment_moves_the_library_and_the_apps_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEURON_ATLAS_CACHE_DIR", str(tmp_path / "shared-cache"))
    assert default_cache_dir() == tmp_path / "shared-cache"
    env = {"NEURON_ATLAS_DATA_DIR": str(tmp_path / "data"), "NEURON_ATLAS_CACHE_DIR": str(tmp_path / "shared-cache")}
    assert Settings.from_env(env).cache_dir == tmp_path / "shared-cache"
    assert Settings.from_env({"NEURON_ATLAS_DATA_DIR": str(tmp_path / "data")}).cache_dir == tmp_path / "data" / "cache"
