"""The checkpoint and response-cache bounds: defaults, and NEURON_ATLAS_* overrides in megabytes."""

from __future__ import annotations

from pathlib import Path

import pytest

from app.core.config import Settings
from app.core.errors import AtlasError


def test_checkpoint_and_response_cache_bounds_come_from_the_environment(tmp_path: Path) -> None:
    defaults = Settings.for_data_dir(tmp_path)
    assert defaults.checkpoint_max_bytes == 4 * 2**30 and defaults.response_cache_bytes == 256 * 2**20
    env = {"NEURON_ATLAS_DATA_DIR": str(tmp_path), "NEURON_ATLAS_CHECKPOINT_MAX_MB": "512"}
    settings = Settings.from_env({**env, "NEURON_ATLAS_RESPONSE_CACHE_MB": "64"})
    assert settings.checkpoint_max_bytes == 512 * 2**20 and settings.response_cache_bytes == 64 * 2**20
    with pytest.raises(AtlasError, match="RESPONSE_CACHE_MB='0' is too small"):
        Settings.from_env({**env, "NEURON_ATLAS_RESPONSE_CACHE_MB": "0"})


def test_preloaded_runs_come_from_the_environment(tmp_path: Path) -> None:
    assert Settings.for_data_dir(tmp_path).preload_runs == 2
    env = {"NEURON_ATLAS_DATA_DIR": str(tmp_path)}
    assert Settings.from_env({**env, "NEURON_ATLAS_PRELOAD_RUNS": "0"}).preload_runs == 0
    with pytest.raises(AtlasError, match="PRELOAD_RUNS='-1' is too small"):
        Settings.from_env({**env, "NEURON_ATLAS_PRELOAD_RUNS": "-1"})
