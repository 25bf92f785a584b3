"""`ArtifactsReader`: the app's one reader of stored runs' artifacts folders, keeping what it read in bounded LRUs.

Concept search, the concept evidence, the neuron page's distribution panels and the image view all read through
one reader per app, so each file is read once per server and each layer's float16 activation rows are held once,
whichever pages use them. A run's folder is never changed once stored (a relabel makes a new run), so what is read
is kept until evicted. Errors name the missing or damaged file, never the server folder, and say to dissect again.
"""

from __future__ import annotations

from pathlib import Path

import torch

from app.core.cache_bounds import CacheBounds
from app.core.lru import LRUCache
from app.persistence.store.layout import ArtifactsLayout
from app.read.artifacts.activations import load_layer_activations
from app.read.artifacts.scoring import (
    ScoringArtifacts,
    load_carry_cosines,
    load_reference_spreads,
    load_scoring_artifacts,
    load_top_indices,
)
from app.read.artifacts.wiring import load_agreement, load_connections, load_outputs
from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.label_free import LabelFreeScores, random_baseline
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement


class ArtifactsReader:
    """Reads runs' artifacts (a stored folder lies under `data_dir` when relative), caching each by its folder."""

    def __init__(self, data_dir: Path, bounds: CacheBounds | None = None) -> None:
        bounds = bounds or CacheBounds()
        self.data_dir = data_dir
        # Keyed by the run's resolved folder (a new one per stored run): a reused run id never finds old values.
        self._scoring: LRUCache[Path, ScoringArtifacts] = LRUCache(bounds.artifact_runs)
        self._carry: LRUCache[Path, torch.Tensor | None] = LRUCache(bounds.artifact_runs)
        self._spreads: LRUCache[Path, torch.Tensor | None] = LRUCache(bounds.artifact_runs)
        self._outputs: LRUCache[Path, ModelOutputs | None] = LRUCache(bounds.artifact_runs)
        self._connections: LRUCache[Path, list[LayerConnections]] = LRUCache(bounds.artifact_runs)
        self._agreement: LRUCache[Path, list[WeightConceptAgreement]] = LRUCache(bounds.artifact_runs)
        self._baselines: LRUCache[tuple[Path, int], LabelFreeScores] = LRUCache(bounds.artifact_runs)
        self._top_indices: LRUCache[tuple[Path, str], torch.Tensor] = LRUCache(bounds.top_indices_layers)
        self._rows: LRUCache[tuple[Path, str], torch.Tensor] = LRUCache(
            bounds.activation_layers,
            weigh=lambda rows: rows.numel() * rows.element_size(),
            max_weight=bounds.activation_bytes,
            loads_per_key=True,
        )

    def layout(self, artifacts_dir: str | Path) -> ArtifactsLayout:
        """Return the layout of a run's artifacts folder, as its row stores it."""
        return ArtifactsLayout.of_run(artifacts_dir, self.data_dir)

    def scoring(self, artifacts_dir: str | Path) -> ScoringArtifacts:
        """Return the run's embeddings, normalisers and vocabulary (cached), or raise ConceptSearchUnavailable."""
        layout = self.layout(artifacts_dir)
        return self._scoring.get_or_load(layout.folder, lambda: load_scoring_artifacts(layout))

    def top_indices(self, artifacts_dir: str | Path, layer: str) -> torch.Tensor:
        """Return the layer's [K, top_k] top image indices (cached), or raise ConceptSearchUnavailable."""
        layout = self.layout(artifacts_dir)
        return self._top_indices.get_or_load(
            (layout.folder, layer), lambda: load_top_indices(layout, layer, self._n_images(layout))
        )

    def carry_cosines(self, artifacts_dir: str | Path) -> torch.Tensor | None:
        """Return each image's carry bar [images] (cached), or None for a run stored before they were kept."""
        layout = self.layout(artifacts_dir)
        return self._carry.get_or_load(layout.folder, lambda: load_carry_cosines(layout, self._n_images(layout)))

    def reference_spreads(self, artifacts_dir: str | Path) -> torch.Tensor | None:
        """Return the vocabulary's reference spreads [R] (cached), or None for a run stored before they were kept."""
        layout = self.layout(artifacts_dir)
        return self._spreads.get_or_load(layout.folder, lambda: load_reference_spreads(layout))

    def outputs(self, artifacts_dir: str | Path) -> ModelOutputs | None:
        """Return the model's logits and classifier inputs on the stored images (cached), or None for a run stored
        before they were kept; raise WiringUnavailable when the file is damaged."""
        layout = self.layout(artifacts_dir)
        return self._outputs.get_or_load(layout.folder, lambda: load_outputs(layout))

    def connections(self, artifacts_dir: str | Path) -> list[LayerConnections]:
        """Return the connections between the run's dissected layers (cached; [] for a run stored without them)."""
        layout = self.layout(artifacts_dir)
        return self._connections.get_or_load(layout.folder, lambda: load_connections(layout))

    def agreement(self, artifacts_dir: str | Path) -> list[WeightConceptAgreement]:
        """Return the paper's weight finding per weight-joined pair (cached; [] for a run stored without it)."""
        layout = self.layout(artifacts_dir)
        return self._agreement.get_or_load(layout.folder, lambda: load_agreement(layout))

    def label_free_baseline(self, artifacts_dir: str | Path, n_top: int) -> LabelFreeScores:
        """Return the label-free scores of random sets of `n_top` of the run's probe images (cached, seeded: the
        chance level of its units' scores), or raise ConceptSearchUnavailable when its embeddings are missing."""
        layout = self.layout(artifacts_dir)
        return self._baselines.get_or_load(
            (layout.folder, n_top), lambda: random_baseline(self.scoring(layout.folder).image_embeddings, n_top)
        )

    def activation_rows(self, artifacts_dir: str | Path, layer: str, n_images: int | None = None) -> torch.Tensor:
        """Return the layer's activations [units, images] (float16, contiguous per unit; one copy per server), or
        raise ActivationsUnavailable (also when they do not cover `n_images` stored images)."""
        layout = self.layout(artifacts_dir)
        rows = self._rows.get_or_load(
            (layout.folder, layer), lambda: load_layer_activations(layout, layer).T.to(torch.float16).contiguous()
        )
        if n_images is not None and rows.shape[1] != n_images:
            load_layer_activations(layout, layer, n_images)  # raises the loader's own message
        return rows

    def holds_scoring(self, artifacts_dir: str | Path, layer: str | None = None) -> bool:
        """Return whether the run's scoring artifacts (and the layer's top image indices) are in memory."""
        folder = self.layout(artifacts_dir).folder
        return folder in self._scoring and (layer is None or (folder, layer) in self._top_indices)

    def _n_images(self, layout: ArtifactsLayout) -> int:
        """Return how many images the run stored (the rows of its embeddings)."""
        return int(self.scoring(layout.folder).image_embeddings.shape[0])
