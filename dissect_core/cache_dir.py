"""The library's default cache folder: the one place that says where embeddings, downloads and probe copies go."""

from __future__ import annotations

import os
from pathlib import Path

#: The environment variable that moves the cache folder.
CACHE_DIR_ENV = "NEURON_ATLAS_CACHE_DIR"
#: The application name the platform's user cache folder is named after.
APP_NAME = "neuron-atlas"


def default_cache_dir() -> Path:
    """Return the cache folder: NEURON_ATLAS_CACHE_DIR when set, else the platform's user cache folder for
    neuron-atlas (~/.cache/neuron-atlas on Linux, ~/Library/Caches/neuron-atlas on macOS)."""
    override = os.environ.get(CACHE_DIR_ENV, "").strip()
    if override:
        return Path(override).expanduser()
    from platformdirs import user_cache_dir

    return Path(user_cache_dir(APP_NAME, appauthor=False))
