"""What a dissection returns: per-layer labels, top images with peak boxes, and the run's artifacts."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.coverage import Coverage
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.evaluation.verdict import LabelVerdict
from dissect_core.run_record import RunRecord

if TYPE_CHECKING:
    import pandas as pd


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
    `significant`: the Benjamini–Hochberg decision at the run's false-discovery rate across the layer (one rule
    of the label's verdict, `dissect_core.evaluation.verdict`; `reliable` is the verdict's top grade);
    `stability`: the share of folds whose training images chose the shown label;
    `explanation`: a sparse non-negative weighted sum of up to five concepts fitted on all images, and
    `explanation_r` its out-of-fold r; `ground_truth_r`: r between the activations and the probe set's own
    class column for the label, where the probe set has labels and the label is one of its classes.
    """

    explained_r: float
    p_value: float
    significant: bool
    stability: float
    explanation: tuple[WeightedConcept, ...]
    explanation_r: float
    ground_truth_r: float | None = None


@dataclass(frozen=True)
class NeuronLabel:
    """A neuron's best concept, its score and the runners-up (best first), and its evaluation when computed.

    `coverage`: how many probe images carry the label's concept, counted by which source; `verdict`: the label's
    grade and reasons (`dissect_core.evaluation.verdict`, with the evaluation); `clarity`, `polysemanticity`,
    `redundancy`: the label-free scores of its top images (`dissect_core.analysis.label_free`).
    """

    unit: int
    label: str
    score: float
    runners_up: tuple[ConceptScore, ...]
    evaluation: NeuronEvaluation | None = None
    coverage: Coverage | None = None
    verdict: LabelVerdict | None = None
    clarity: float | None = None
    polysemanticity: float | None = None
    redundancy: float | None = None


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
    """A finished dissection: its record, probe and concept sets, per-layer results, reusable artifacts.

    `image_embeddings` [N, D] and `log_normalisers` [N] (logsumexp over the concept set of a*cos, for the
    soft-WPMI/WPMI `a` used) let a server score concepts typed later without a pass over the images.
    """

    record: RunRecord
    image_ids: list[str]
    image_paths: list[str]
    concepts: list[str]
    layers: list[LayerResult]
    image_embeddings: torch.Tensor
    log_normalisers: torch.Tensor | None
    #: [N] float32: each image's CARRY_RANK-th highest cosine over the concept set
    #: (dissect_core.analysis.concept_evidence); None for results made before it was kept.
    carry_cosines: torch.Tensor | None = None
    #: [R] float32, sorted: the spreads of the vocabulary's concepts some image carries, the reference that tells a
    #: concept the encoder cannot see (dissect_core.analysis.coverage); None for results made before it was kept.
    reference_spreads: torch.Tensor | None = None
    #: The model's logits (and its classifier's inputs) on the images, recorded in the probe pass; None for
    #: results made before they were kept.
    outputs: ModelOutputs | None = None
    #: One per ordered pair of dissected layers, the upstream first (dissect_core.analysis.connections).
    connections: list[LayerConnections] = field(default_factory=list)
    #: The paper's weight finding for each weight-joined pair whose downstream units have class names.
    weight_concept_agreement: list[WeightConceptAgreement] = field(default_factory=list)

    def layer(self, name: str) -> LayerResult:
        """Return the result of the named layer."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_frame(self) -> pd.DataFrame:
        """Return a pandas DataFrame with one row per neuron, the columns and values of results.csv
        (dissect_core.neuron_rows; list columns as JSON text)."""
        from dissect_core.frames import neuron_frame
        from dissect_core.neuron_rows import RunProvenance, result_rows

        return neuron_frame(result_rows(self, RunProvenance.of_record(self.record)))

    def save(self, folder: str | Path) -> Path:
        """Write the run as a self-contained folder (results.csv/json, its record, artifacts as safetensors and JSON,
        the probe images' views, a manifest); return it. `dissect_core.load_saved` reads it back."""
        from dissect_core.saved import save_result

        return save_result(self, folder)

    def push(self, url: str, token: str | None = None) -> str:
        """Save the run to a temporary folder and upload it to the neuron-atlas server at `url` (token: argument or
        NEURON_ATLAS_TOKEN; an editor's or admin's); return the stored run's URL."""
        from dissect_core.client import Client

        with tempfile.TemporaryDirectory(prefix="neuron-atlas-push-") as scratch:
            folder = self.save(Path(scratch) / "run")
            return Client(url, token).push(folder)


#: The evaluation fields of a neuron row (dissect_core.neuron_rows) and of the API, in order.
EVALUATION_FIELDS = (
    "explained_r",
    "p_value",
    "reliable",
    "stability",
    "explanation",
    "explanation_r",
    "ground_truth_r",
)
