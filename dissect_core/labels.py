"""Turn a [K, C] score matrix into labels: each neuron's best concept, its score and the runners-up."""

from __future__ import annotations

import math
from collections.abc import Sequence

from torch import Tensor

from dissect_core.errors import DissectError
from dissect_core.results import ConceptScore, NeuronLabel
from dissect_core.topk import stable_topk


def label_neurons(scores: Tensor, concepts: Sequence[str], n_runners_up: int = 4) -> list[NeuronLabel]:
    """Return one NeuronLabel per row of `scores`: best concept first, then up to `n_runners_up` next best.

    Equal scores go to the lower concept index; a NaN score never ranks, so a neuron scored NaN on every concept
    (NaN activations) raises rather than take an arbitrary label.
    """
    if not concepts:
        raise ValueError("there are no concepts to label the neurons with; pass a non-empty concept set")
    if scores.dim() != 2 or scores.shape[1] != len(concepts):
        raise ValueError(
            f"scores of shape {tuple(scores.shape)} need one column per concept ({len(concepts)}); pass the concepts "
            "the scores were computed for"
        )
    values, indices = stable_topk(scores.float(), min(1 + n_runners_up, len(concepts)))
    labels = []
    for unit, (row_values, row_indices) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        ranked = [
            ConceptScore(concepts[i], v) for v, i in zip(row_values, row_indices, strict=True) if not math.isnan(v)
        ]
        if not ranked:
            raise DissectError(
                f"neuron {unit} scored NaN on every concept, so it has no label: its activations hold NaN; check "
                "the model's outputs on the probe set (a float32 forward pass often avoids them)"
            )
        labels.append(
            NeuronLabel(unit=unit, label=ranked[0].concept, score=ranked[0].score, runners_up=tuple(ranked[1:]))
        )
    return labels
