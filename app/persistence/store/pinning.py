"""A run's record as stored: its JSON, plain (no NaN, no tensors), its files and folders under the data folder
relative to it (a moved data folder keeps working)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from app.core.paths import stored_settings
from dissect_core.run_record import RunRecord


def pin_settings(record: RunRecord, data_dir: Path) -> dict[str, Any]:
    """Return the run's record as stored: `record.to_json()` as plain JSON, files under `data_dir` relative to it."""
    return stored_settings(json_safe(record.to_json()), data_dir)


def json_safe(value: Any) -> Any:
    """Return `value` as plain JSON types; NaN and infinities become None, unknown objects strings."""
    if isinstance(value, dict):
        return {str(key): json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [json_safe(item) for item in value]
    if isinstance(value, torch.Tensor | np.generic) and getattr(value, "ndim", 0) == 0:
        value = value.item()
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if value is None or isinstance(value, bool | int | str):
        return value
    return str(value)
