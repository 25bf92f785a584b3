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
class WeightedConcept:
    """One term of a multi-concept explanation: a concept and its weight (activation per unit of similarity)."""

    concept: str
    weight: float


@dataclass(frozen=True)
class NeuronEvaluation:
    """How well a neuron's label and explanation predict it on probe images they were not chosen from.

    `explained_r`: out-of-fold Pearson r between the single label's simulated activations and the real ones;
    `p_value`: one-sided p of that r against activations that carry no information about the images;
    `reliable`: the Benjamini–Hochberg decision at the run's false-discovery rate across the layer;
    `stability`: the share of folds whose training images chose the shown label;
    `explanation`: a sparse non-negative weighted sum of up to five concepts fitted on all images, and
    `explanation_r` its out-of-fold r; `ground_truth_r`: r between the activations and the probe set's own
    class column for the label, where the probe set has labels and the label is one of its classes.
    """

    explained_r: float
    p_value: float
    reliable: bool
    stability: float
    explanation: tuple[WeightedConcept, ...]
    explanation_r: float
    ground_truth_r: float | None = None

    def explanation_text(self) -> str:
        """Return the explanation as `concept:weight` terms joined by `; ` (heaviest first)."""
        return "; ".join(f"{term.concept}:{term.weight:.4g}" for term in self.explanation)


@dataclass(frozen=True)
class NeuronLabel:
    """A neuron's best concept, its score and the runners-up (best first), and its evaluation when computed."""

    unit: int
    label: str
    score: float
    runners_up: tuple[ConceptScore, ...]
    evaluation: NeuronEvaluation | None = None


@dataclass(frozen=True)
class LayerEvaluation:
    """What a layer's evaluation used and found: folds, simulation, the null and the reliable threshold.

    Under the null an out-of-fold r is about normal with mean 0 and sd `null_sd` (1/sqrt(n_images - n_folds - 2));
    `reliable_min_r` is the smallest r the Benjamini–Hochberg procedure called reliable (None if none was).
    """

    n_folds: int
    simulation: str
    false_discovery_rate: float
    n_images: int
    null_sd: float
    reliable_min_r: float | None
    share_reliable: float


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
    evaluation: LayerEvaluation | None = None

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
    #: [N] float32: each image's CARRY_RANK-th highest cosine over the concept set
    #: (dissect_core.analysis.concept_evidence); None for results made before it was kept.
    carry_cosines: torch.Tensor | None = None

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
                row.update(_evaluation_columns(neuron.evaluation))
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
                    "evaluation": asdict(layer.evaluation) if layer.evaluation else None,
                    "neurons": [
                        {
                            "unit": neuron.unit,
                            "label": neuron.label,
                            "score": neuron.score,
                            **_evaluation_json(neuron.evaluation),
                            "runners_up": [asdict(alt) for alt in neuron.runners_up],
                            "top_images": [{**asdict(top), "path": self.image_paths[top.image_index]} for top in tops],
                        }
                        for neuron, tops in zip(layer.neurons, layer.top_images, strict=True)
                    ],
                }
                for layer in self.layers
            ],
        }


#: The evaluation columns of results.csv, results.json and the API, in order.
EVALUATION_FIELDS = (
    "explained_r",
    "p_value",
    "reliable",
    "stability",
    "explanation",
    "explanation_r",
    "ground_truth_r",
)


def _evaluation_columns(evaluation: NeuronEvaluation | None) -> dict[str, Any]:
    """Return a neuron's evaluation as flat CSV columns (empty when it was not evaluated)."""
    if evaluation is None:
        return dict.fromkeys(EVALUATION_FIELDS, "")
    return {
        "explained_r": evaluation.explained_r,
        "p_value": evaluation.p_value,
        "reliable": evaluation.reliable,
        "stability": evaluation.stability,
        "explanation": evaluation.explanation_text(),
        "explanation_r": evaluation.explanation_r,
        "ground_truth_r": "" if evaluation.ground_truth_r is None else evaluation.ground_truth_r,
    }


def _evaluation_json(evaluation: NeuronEvaluation | None) -> dict[str, Any]:
    """Return a neuron's evaluation as JSON fields (nulls when it was not evaluated)."""
    if evaluation is None:
        return dict.fromkeys(EVALUATION_FIELDS)
    return {
        "explained_r": evaluation.explained_r,
        "p_value": evaluation.p_value,
        "reliable": evaluation.reliable,
        "stability": evaluation.stability,
        "explanation": [asdict(term) for term in evaluation.explanation],
        "explanation_r": evaluation.explanation_r,
        "ground_truth_r": evaluation.ground_truth_r,
    }
