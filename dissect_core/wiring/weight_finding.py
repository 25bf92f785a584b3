"""The paper's weight finding for a run: each weight-joined pair of dissected layers whose downstream units are the
classifier's named classes, scored by dissect_core.analysis.weight_agreement in the run's own text encoder."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.weight_agreement import (
    WeightConceptAgreement,
    label_class_cosines,
    weight_concept_agreement,
)
from dissect_core.results import LayerResult


def weight_findings(
    connections: Sequence[LayerConnections],
    layers: Sequence[LayerResult],
    classifier_layer: str | None,
    class_names: Sequence[str] | None,
    concepts: Sequence[str],
    concept_embeddings: Tensor,
    embed_class_names: Callable[[list[str]], Tensor],
) -> list[WeightConceptAgreement]:
    """Return the weight finding of each weight pair into the classifier (when its units have class names).

    `concept_embeddings` [concepts, E] are the run's concept embeddings (a unit's label embeds as its concept);
    `embed_class_names` embeds class names with the same encoder and prompt.
    """
    pairs = [
        connection
        for connection in connections
        if connection.kind == "weight"
        and connection.to_layer == classifier_layer
        and class_names is not None
        and connection.weights.shape[0] == len(class_names)
    ]
    if not pairs or class_names is None:
        return []
    class_embeddings = embed_class_names(list(class_names)).float().cpu()
    position = {concept: index for index, concept in enumerate(concepts)}
    by_name = {layer.name: layer for layer in layers}
    findings = []
    for pair in pairs:
        upstream = by_name[pair.from_layer]
        labels = torch.tensor([position[neuron.label] for neuron in upstream.neurons])
        scores = torch.tensor([neuron.score for neuron in upstream.neurons])
        similarity = label_class_cosines(class_embeddings, concept_embeddings[labels].float())
        findings.append(weight_concept_agreement(pair.from_layer, pair.to_layer, pair.weights, similarity, scores))
    return findings
