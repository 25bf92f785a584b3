"""A stored run's per-layer activations [stored images, units] (float16 on disk), read from its artifacts folder."""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.errors import AtlasError
from app.core.lru import LRUCache
from app.persistence.store.artifacts import ACTIVATIONS_FOLDER, layer_file_name
from app.read.artifacts.tensors import damaged_artifact, load_artifact_tensor

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


class LayerActivationRows:
    """Each stored layer's activations as float16 rows [units, images], read once per server and shared by the
    neuron page's distribution panels and the image view, so that a layer is held once, not once per page kind."""

    def __init__(self, max_layers: int = 64, max_bytes: int = 2 * 1024**3) -> None:
        # Keyed by the run's artifacts folder (a new one per stored run): a reused run id never finds old rows.
        self._rows: LRUCache[tuple[Path, str], torch.Tensor] = LRUCache(
            max_layers, weigh=lambda rows: rows.numel() * rows.element_size(), max_weight=max_bytes, loads_per_key=True
        )

    def get(self, run_folder: Path, layer: str, n_images: int | None = None) -> torch.Tensor:
        """Return the layer's activations [units, images] (float16, contiguous per unit), or raise
        ActivationsUnavailable (also when they do not cover `n_images` stored images)."""
        rows = self._rows.get_or_load(
            (Path(run_folder), layer),
            lambda: load_layer_activations(Path(run_folder), layer).T.to(torch.float16).contiguous(),
        )
        if n_images is not None and rows.shape[1] != n_images:
            load_layer_activations(Path(run_folder), layer, n_images)  # raises the reader's own message
        return rows
