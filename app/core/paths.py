"""Paths kept in the database relative to the data folder, so a restored or moved data folder still works.

A stored path under the data folder is relative to it; one outside it (an operator's probe folder) stays absolute.
Reading resolves both forms, so rows written before paths were stored relative keep working too (a config's
files and folders: `DissectConfig.from_dict(values, base_dir=data_dir)`).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dissect_core.config import names_a_path, resolved_path

__all__ = ["names_a_path", "resolved_path", "stored_path", "stored_settings"]


def stored_path(path: str | Path, data_dir: Path) -> str:
    """Return how a path is stored: relative to `data_dir` when it lies under it, else absolute as given."""
    absolute = Path(path).expanduser()
    if not absolute.is_absolute():
        return str(path)
    try:
        return absolute.resolve().relative_to(data_dir.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def stored_settings(values: Mapping[str, Any], data_dir: Path) -> dict[str, Any]:
    """Return settings with each file or folder under `data_dir` stored relative to it (the others as given)."""
    return {key: stored_path(value, data_dir) if names_a_path(key, value) else value for key, value in values.items()}
