"""A stored run's per-layer activations [stored images, units] (float16 on disk), read from its artifacts folder."""

from __future__ import annotations

import torch

from app.core.errors import AtlasError
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.tensors import damaged_artifact, load_artifact_tensor

NO_EVIDENCE = "its histogram, bands and similar neurons cannot be shown"


class ActivationsUnavailable(AtlasError):
    """The run keeps no activations for the layer (stored before they were kept) or the file is damaged."""


def load_layer_activations(layout: ArtifactsLayout, layer: str, n_images: int | None = None) -> torch.Tensor:
    """Return the layer's [stored images, units] activations as float32, or raise ActivationsUnavailable."""
    path = layout.activations(layer)
    what = f"Layer '{layer}' of this run"
    activations = load_artifact_tensor(path, what, 2, NO_EVIDENCE, ActivationsUnavailable)
    if n_images is not None and activations.shape[0] != n_images:
        problem = f"{activations.shape[0]} rows for {n_images} stored images"
        raise damaged_artifact(path, what, problem, NO_EVIDENCE, ActivationsUnavailable)
    return activations.float()
