"""Grade every neuron's label of a run: its concept's coverage, then its verdict, and its label-free scores."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import replace

import torch
from torch import Tensor

from dissect_core.analysis.coverage import Coverage, concept_coverage, labelled_images, spread_of
from dissect_core.analysis.label_free import layer_label_free_scores
from dissect_core.evaluation.ceiling import detector_ceilings
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.evaluation.verdict import VerdictRules, grade_label
from dissect_core.results import LayerResult
from dissect_core.similarity.cosine import CosineSource


def label_coverages(
    cosine: CosineSource,
    carry_cosines: Tensor,
    reference_spreads: Tensor | None,
    concepts: Sequence[str],
    labels: set[str],
    image_labels: Sequence[str | None] | None,
    *,
    signals: ConceptSignals | None = None,
    folds: Tensor | None = None,
    recognised: Tensor | None = None,
) -> dict[str, Coverage]:
    """Return the coverage of each label (a concept of the run's `concepts`), each concept's column read once;
    `recognised` [concepts] is the encoder's own answer to which concepts it can place, when it has one.

    With the run's `signals` and `folds` each coverage also has its `ceiling_r`: the out-of-fold r of a perfect
    detector of the concept, firing on its labelled images when the coverage comes from labels, else on the
    images carrying it by the encoder (`dissect_core.evaluation.ceiling`).
    """
    position = {concept: index for index, concept in enumerate(concepts)}
    bars = carry_cosines.float()
    coverages = {}
    detectors = []
    for label in sorted(labels):
        column = cosine.columns(position[label], position[label] + 1).float()[:, 0]
        carried = column >= bars
        coverages[label] = concept_coverage(
            label,
            n_carrying=int(carried.sum()),
            n_images=len(column),
            spread=float(spread_of(column)),
            reference_spreads=reference_spreads,
            image_labels=image_labels,
            recognised=None if recognised is None else bool(recognised[position[label]]),
        )
        labelled = labelled_images(label, image_labels) if coverages[label].source == "labels" else None
        detectors.append(carried if labelled is None else labelled)
    if signals is None or folds is None or not coverages:
        return coverages
    ceilings = detector_ceilings(
        signals,
        torch.stack(detectors, dim=1),
        torch.tensor([position[label] for label in coverages]),
        folds,
        int(folds.max()) + 1,
    )
    return {
        label: replace(coverage, ceiling_r=float(ceiling))
        for (label, coverage), ceiling in zip(coverages.items(), ceilings.tolist(), strict=True)
    }


def graded_layer(
    layer: LayerResult,
    coverages: dict[str, Coverage],
    image_embeddings: Tensor,
    n_folds: int,
    rules: VerdictRules | None = None,
) -> LayerResult:
    """Return the layer with each neuron's coverage, verdict (where evaluated) and label-free scores."""
    scores = layer_label_free_scores(image_embeddings, layer.top_indices) if layer.top_indices.shape[1] >= 2 else None
    neurons = []
    for row, neuron in enumerate(layer.neurons):
        coverage = coverages[neuron.label]
        verdict = (
            None
            if neuron.evaluation is None
            else grade_label(neuron.evaluation, coverage, rules, n_folds=n_folds, concept=neuron.label)
        )
        neurons.append(
            replace(
                neuron,
                coverage=coverage,
                verdict=verdict,
                clarity=_value(scores.clarity, row) if scores else None,
                polysemanticity=_value(scores.polysemanticity, row) if scores else None,
                redundancy=_value(scores.redundancy, row) if scores else None,
            )
        )
    return replace(layer, neurons=neurons)


def _value(values: Tensor, row: int) -> float | None:
    value = float(values[row])
    return value if math.isfinite(value) else None
