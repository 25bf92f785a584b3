"""Turn a [K, C] score matrix into labels: each neuron's best concept, its score and the runners-up."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

from dissect_core.results import ConceptScore, NeuronLabel


def label_neurons(scores: Tensor, concepts: Sequence[str], n_runners_up: int = 4) -> list[NeuronLabel]:
    """Return one NeuronLabel per row of `scores`: best concept first, then `n_runners_up` next best."""
    if scores.shape[1] != len(concepts):
        raise ValueError(f"scores have {scores.shape[1]} concept columns but there are {len(concepts)} concepts")
    k = min(1 + n_runners_up, len(concepts))
    values, indices = torch.topk(scores.float(), k=k, dim=1)
    labels = []
    for unit, (row_values, row_indices) in enumerate(zip(values.tolist(), indices.tolist(), strict=True)):
        ranked = [ConceptScore(concepts[i], float(v)) for v, i in zip(row_values, row_indices, strict=True)]
        labels.append(
            NeuronLabel(unit=unit, label=ranked[0].concept, score=ranked[0].score, runners_up=tuple(ranked[1:]))
        )
    return labels
