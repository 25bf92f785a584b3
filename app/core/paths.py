"""Paths kept in the database relative to the data folder, so a restored or moved data folder still works.

A stored path under the data folder is relative to it; one outside it (an operator's probe folder) stays absolute.
Reading resolves both forms, so rows written before paths were stored relative keep working too.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from dissect_core.data.concepts import BUILT_IN_CONCEPT_SETS
from dissect_core.names import BUILT_IN_PROBE_SETS, is_torchscript_name

#: Settings (a run's, a job's params) that may name a file or folder rather than a built-in or an architecture.
PATH_SETTINGS = ("probe", "concepts", "checkpoint", "labels_file", "model")


def stored_path(path: str | Path, data_dir: Path) -> str:
    """Return how a path is stored: relative to `data_dir` when it lies under it, else absolute as given."""
    absolute = Path(path).expanduser()
    if not absolute.is_absolute():
        return str(path)
    try:
        return absolute.resolve().relative_to(data_dir.resolve()).as_posix()
    except ValueError:
        return str(absolute)


def resolved_path(stored: str | Path, data_dir: Path) -> Path:
    """Return the absolute path a stored path stands for: a relative one lies under `data_dir`."""
    path = Path(stored).expanduser()
    return path if path.is_absolute() else data_dir / path


def names_a_path(key: str, value: object) -> bool:
    """Return whether the setting `key` holds a file or folder (not a built-in set's or an architecture's name)."""
    if key not in PATH_SETTINGS or not isinstance(value, str) or not value.strip():
        return False
    if key == "probe":
        return value.strip() not in BUILT_IN_PROBE_SETS
    if key == "concepts":
        return value.strip() not in BUILT_IN_CONCEPT_SETS
    return is_torchscript_name(value) if key == "model" else True


def stored_settings(values: Mapping[str, Any], data_dir: Path) -> dict[str, Any]:
    """Return settings with each file or folder under `data_dir` stored relative to it (the others as given)."""
    return {key: stored_path(value, data_dir) if names_a_path(key, value) else value for key, value in values.items()}


def resolved_settings(values: Mapping[str, Any], data_dir: Path) -> dict[str, Any]:
    """Return stored settings with each relative file or folder resolved under `data_dir` (absolute ones kept)."""
    return {
        key: str(resolved_path(value, data_dir)) if names_a_path(key, value) else value for key, value in values.items()
    }
