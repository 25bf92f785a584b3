"""A content-addressed cache of tensors on disk: keys are hashes of everything that determines a value."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch


def cache_key(*parts: Any) -> str:
    """Return the sha256 of the JSON encoding of `parts` (anything JSON-serialisable)."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


class TensorCache:
    """Stores dicts of tensors and plain values under `root/<kind>/<key>.pt`; no root means no cache."""

    def __init__(self, root: Path | None) -> None:
        self.root = Path(root) if root else None

    def _path(self, kind: str, key: str) -> Path:
        assert self.root is not None
        return self.root / kind / f"{key}.pt"

    def load(self, kind: str, key: str) -> dict[str, Any] | None:
        """Return the stored value, or None when absent or unreadable (a torn write is just a miss). Its tensors are
        mapped copy-on-write from the file: their pages are the file's, read on demand, not anonymous memory."""
        if self.root is None:
            return None
        path = self._path(kind, key)
        if not path.is_file():
            return None
        try:
            return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
        except Exception:
            return None

    def save(self, kind: str, key: str, value: dict[str, Any]) -> None:
        """Store `value` atomically (write to a temporary file, then rename)."""
        if self.root is None:
            return
        path = self._path(kind, key)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_atomically(path, lambda temporary: torch.save(value, temporary))


def write_atomically(path: Path, write: Callable[[Path], object]) -> None:
    """Write `path` through `write(temporary)` on a temporary file beside it, then rename it into place, so a reader
    sees the old file or the whole new one (a crash leaves no partial `path`)."""
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
    os.close(handle)
    try:
        write(Path(temporary))
        os.replace(temporary, path)
    finally:
        if os.path.exists(temporary):
            os.unlink(temporary)
