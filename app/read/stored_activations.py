"""A stored run's per-layer activations [stored images, units] (float16 on disk), read from its artifacts folder."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.errors import AtlasError
from app.persistence.store.artifacts import ACTIVATIONS_FOLDER


class ActivationsUnavailable(AtlasError):
    """The run keeps no activations for the layer (stored before they were kept) or the file is damaged."""


def activations_file(run_folder: Path, layer: str) -> Path:
    """Return where a run's artifacts folder keeps a layer's activations."""
    return run_folder / ACTIVATIONS_FOLDER / f"{layer}.pt"


def load_layer_activations(run_folder: Path, layer: str, n_images: int | None = None) -> torch.Tensor:
    """Return the layer's [stored images, units] activations as float32, or raise ActivationsUnavailable."""
    path = activations_file(run_folder, layer)
    if not path.is_file():
        raise ActivationsUnavailable(
            f"this run keeps no activations for layer '{layer}' (it was stored before runs kept them); "
            "dissect the model again to see histograms, bands and similar neurons"
        )
    try:
        value = torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # any unreadable file gets the same advice
        value = None
    if not isinstance(value, torch.Tensor) or value.dim() != 2 or (n_images is not None and value.shape[0] != n_images):
        raise ActivationsUnavailable(
            f"the stored activations of layer '{layer}' are damaged; dissect the model again to restore them"
        )
    return value.float()
