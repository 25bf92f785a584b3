"""Paths kept in the database relative to the data folder, so a restored or moved data folder still works."""

from __future__ import annotations

from pathlib import Path


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
