"""What a dissection returns: per-layer labels, top images with peak boxes, and the run's artifacts."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

import torch


@dataclass(frozen=True)
class ConceptScore:
    """One concept and its similarity score for a neuron."""

    concept: str
    score: float


@dataclass(frozen=True)
class TopImage:
    """One of a neuron's highest-activating probe images.

    `box` is (x0, y0, x1, y1) in [0, 1], relative to the target model's input view of the image
    (resize + centre crop, see `ProbeSet.view`), around the spatial peak of the neuron's map.
    """

    rank: int
    image_index: int
    image_id: str
    activation: float
    peak: tuple[int, int] | None  # (row, col) in the activation map; None for vector layers
    box: tuple[float, float, float, float]


@dataclass(frozen=True)
class NeuronLabel:
    """A neuron's best concept, its score and the runners-up (best first)."""

    unit: int
    label: str
    score: float
    runners_up: tuple[ConceptScore, ...]


@dataclass
class LayerResult:
    """Everything computed for one layer.

    `activations` [N, K] are the pooled activations; `top_indices` [K, top_k] the image indices each
    neuron's score used (descending activation); `top_maps` [K, n_top, h, w] the activation maps of the
    `top_images` (None for vector layers), used to draw heatmaps.
    """

    name: str
    kind: str  # "conv", "linear", "vit" or "other"
    neurons: list[NeuronLabel]
    top_images: list[list[TopImage]]
    activations: torch.Tensor
    top_indices: torch.Tensor
    top_maps: torch.Tensor | None = None

    @property
    def n_units(self) -> int:
        """Number of neurons in the layer."""
        return len(self.neurons)


@dataclass
class DissectionResult:
    """A finished dissection: settings, probe and concept sets, per-layer results, reusable artifacts.

    `image_embeddings` [N, D] and `log_normalisers` [N] (logsumexp over the concept set of a*cos, for the
    soft-WPMI/WPMI `a` used) let a server score concepts typed later without a pass over the images.
    """

    settings: dict[str, Any]
    image_ids: list[str]
    image_paths: list[str]
    concepts: list[str]
    layers: list[LayerResult]
    image_embeddings: torch.Tensor
    log_normalisers: torch.Tensor | None
    skipped_images: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def layer(self, name: str) -> LayerResult:
        """Return the result of the named layer."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_rows(self) -> list[dict[str, Any]]:
        """Return one flat dict per neuron: layer, unit, label, score and runners-up."""
        rows = []
        for layer in self.layers:
            for neuron in layer.neurons:
                row: dict[str, Any] = {
                    "layer": layer.name,
                    "unit": neuron.unit,
                    "label": neuron.label,
                    "score": neuron.score,
                }
                for i, alt in enumerate(neuron.runners_up, start=1):
                    row[f"label_{i + 1}"] = alt.concept
                    row[f"score_{i + 1}"] = alt.score
                rows.append(row)
        return rows

    def to_json(self) -> dict[str, Any]:
        """Return a JSON-ready dict: settings plus every neuron with runners-up and top images."""
        return {
            "settings": self.settings,
            "n_images": len(self.image_ids),
            "skipped_images": self.skipped_images,
            "timings_s": self.timings,
            "layers": [
                {
                    "name": layer.name,
                    "kind": layer.kind,
                    "n_units": layer.n_units,
                    "neurons": [
                        {
                            "unit": neuron.unit,
                            "label": neuron.label,
                            "score": neuron.score,
                            "runners_up": [asdict(alt) for alt in neuron.runners_up],
                            "top_images": [{**asdict(top), "path": self.image_paths[top.image_index]} for top in tops],
                        }
                        for neuron, tops in zip(layer.neurons, layer.top_images, strict=True)
                    ],
                }
                for layer in self.layers
            ],
        }
