"""A stored run's per-layer activations [stored images, units] (float16 on disk), read from its artifacts folder."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.errors import AtlasError
from app.persistence.store.artifacts import ACTIVATIONS_FOLDER, layer_file_name
from app.read.artifact_tensors import damaged_artifact, load_artifact_tensor

NO_EVIDENCE = "its histogram, bands and similar neurons cannot be shown"


class ActivationsUnavailable(AtlasError):
    """The run keeps no activations for the layer (stored before they were kept) or the file is damaged."""


def load_layer_activations(run_folder: Path, layer: str, n_images: int | None = None) -> torch.Tensor:
    """Return the layer's [stored images, units] activations as float32, or raise ActivationsUnavailable."""
    path = run_folder / ACTIVATIONS_FOLDER / f"{layer_file_name(layer)}.pt"
    what = f"Layer '{layer}' of this run"
    activations = load_artifact_tensor(path, what, 2, NO_EVIDENCE, ActivationsUnavailable)
    if n_images is not None and activations.shape[0] != n_images:
        problem = f"{activations.shape[0]} rows for {n_images} stored images"
        raise damaged_artifact(path, what, problem, NO_EVIDENCE, ActivationsUnavailable)
    return activations.float()
