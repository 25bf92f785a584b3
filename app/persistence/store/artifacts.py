"""A run's artifacts folder: embeddings, normalisers, top indices, activations, concepts and settings, written whole."""

from __future__ import annotations

import json
import shutil
import uuid
from pathlib import Path
from typing import Any

import torch

from app.core.errors import AtlasError
from app.persistence.store.pinning import concepts_text
from dissect_core.results import DissectionResult

# Each layer's pooled activations [stored images, units] as float16, one file per layer.
ACTIVATIONS_FOLDER = "activations"
# Each spatial layer's top images' activation maps [units, top images, h, w] as float16, one file per layer:
# what a top image's heatmap (and nothing else) is cut from on its first request.
TOP_MAPS_FOLDER = "top_maps"
# Each stored image's CARRY_RANK-th highest cosine over the concept set [stored images] (float32): concept evidence.
CARRY_COSINES_FILE = "carry_cosines.pt"


def write_artifacts(root: Path, result: DissectionResult, pinned: dict[str, Any]) -> Path:
    """Write the run's artifacts into a new folder under root; return it (it appears complete or not at all)."""
    run_dir = root / uuid.uuid4().hex
    partial = root / f".partial-{run_dir.name}"
    partial.mkdir(parents=True)
    try:
        torch.save(result.image_embeddings.detach().cpu().contiguous().clone(), partial / "image_embeddings.pt")
        if result.log_normalisers is not None:
            normalisers = result.log_normalisers.detach().cpu().contiguous().clone()
            torch.save(normalisers, partial / "log_normalisers.pt")
        if result.carry_cosines is not None:
            carry = result.carry_cosines.detach().cpu().float().contiguous().clone()
            torch.save(carry, partial / CARRY_COSINES_FILE)
        (partial / "top_indices").mkdir()
        (partial / ACTIVATIONS_FOLDER).mkdir()
        (partial / TOP_MAPS_FOLDER).mkdir()
        for layer in result.layers:
            file_name = f"{layer_file_name(layer.name)}.pt"
            torch.save(layer.top_indices.detach().cpu().contiguous().clone(), partial / "top_indices" / file_name)
            # float16 is enough for histograms, bands and correlations, and halves the bytes kept per run.
            activations = layer.activations.detach().cpu().to(torch.float16).contiguous().clone()
            torch.save(activations, partial / ACTIVATIONS_FOLDER / file_name)
            if layer.top_maps is not None:
                top_maps = layer.top_maps.detach().cpu().to(torch.float16).contiguous().clone()
                torch.save(top_maps, partial / TOP_MAPS_FOLDER / file_name)
        torch.save(list(result.concepts), partial / "concepts.pt")
        (partial / "concepts.txt").write_text(concepts_text(result.concepts), encoding="utf-8")
        (partial / "settings.json").write_text(json.dumps(pinned, indent=2, sort_keys=True), encoding="utf-8")
        partial.rename(run_dir)
    except BaseException:
        shutil.rmtree(partial, ignore_errors=True)
        raise
    return run_dir


def layer_file_name(layer_name: str) -> str:
    """Return the layer's name as a file name, or raise when it could name another folder."""
    if not layer_name or "/" in layer_name or "\\" in layer_name or layer_name in (".", ".."):
        raise AtlasError(f"layer name {layer_name!r} cannot name a file; name layers by their module path")
    return layer_name
