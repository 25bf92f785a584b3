"""A run's settings pinned as plain JSON: the config, what the pipeline recorded, hashes and the code version."""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

import dissect_core
from dissect_core.config import DissectConfig
from dissect_core.data.probe import probe_set_hash
from dissect_core.results import DissectionResult


def pin_settings(result: DissectionResult, config: DissectConfig | None) -> dict[str, Any]:
    """Return every setting of the run as plain JSON: config, pipeline settings, hashes, code version."""
    # Defaults first: a field neither the config nor the pipeline recorded had its default value.
    pinned: dict[str, Any] = DissectConfig.defaults()
    if config is not None:
        pinned.update(config.to_dict())
    pinned.update(result.settings)
    if "model" not in pinned:
        raise ValueError("store_run needs the model name: pass config= or put 'model' in result.settings")
    pinned["similarity_params"] = dict(pinned.get("similarity_params") or {})
    pinned.update(
        code_version=dissect_core.__version__,
        probe_set_hash=result.settings.get("probe_hash") or probe_set_hash(result.image_ids),
        concept_set_hash=hashlib.sha256(concepts_text(result.concepts).encode()).hexdigest(),
        n_images=len(result.image_ids),
        n_concepts=len(result.concepts),
        skipped_images=list(result.skipped_images),
        timings_s=dict(result.timings),
    )
    return json_safe(pinned)


def concepts_text(concepts: Iterable[str]) -> str:
    """Return the concept set as stored: one concept per line."""
    return "".join(f"{concept}\n" for concept in concepts)


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
