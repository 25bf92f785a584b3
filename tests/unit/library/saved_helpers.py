"""A saved run's test helpers: a full fake result (outputs, connections, the weight finding) and result equality."""

from __future__ import annotations

import json
from pathlib import Path

import torch

from dissect_core.analysis.connections import LayerConnections
from dissect_core.analysis.outputs import ModelOutputs
from dissect_core.analysis.weight_agreement import WeightConceptAgreement
from dissect_core.results import DissectionResult
from dissect_core.saved.codec import to_json
from tests.support.fakes import fake_result, make_images


def full_result(folder: Path, n_images: int = 10) -> DissectionResult:
    """Return a fake evaluated result over `n_images` new images, with every optional artifact filled in."""
    result = fake_result(make_images(folder, n_images), evaluated=True)
    result.carry_cosines = torch.rand(n_images)
    result.reference_spreads = torch.rand(7).sort().values
    result.outputs = ModelOutputs(
        logits=torch.randn(n_images, 4),
        classifier_layer="fc",
        classifier_inputs=torch.randn(n_images, 6),
        classifier_weight=torch.randn(4, 6),
        classifier_bias=torch.randn(4),
        feeding_layer="layer1",
    )
    result.connections = [LayerConnections("layer1", "fc", "weight", torch.randn(4, 6), None, False, "fc's weight")]
    result.weight_concept_agreement = [WeightConceptAgreement("layer1", "fc", 0.3, 0.01, 0.2, 0.1, [(4, 0.2)])]
    return result


def assert_same_result(got: DissectionResult, want: DissectionResult) -> None:
    """Assert two results hold the same record, ids, concepts, layers, tensors and analyses."""
    assert got.record.to_json() == want.record.to_json()
    assert (got.image_ids, got.image_paths, got.concepts) == (want.image_ids, want.image_paths, want.concepts)
    assert [layer.name for layer in got.layers] == [layer.name for layer in want.layers]
    for mine, theirs in zip(got.layers, want.layers, strict=True):
        assert mine.kind == theirs.kind
        # JSON text compares NaN with NaN (an undefined r) as equal, as dataclass equality cannot.
        assert json.dumps(to_json(mine.neurons)) == json.dumps(to_json(theirs.neurons))
        assert mine.top_images == theirs.top_images
        assert mine.evaluation == theirs.evaluation
        for name in ("activations", "top_indices", "top_maps"):
            assert_same_tensor(getattr(mine, name), getattr(theirs, name))
    for name in ("image_embeddings", "log_normalisers", "carry_cosines", "reference_spreads"):
        assert_same_tensor(getattr(got, name), getattr(want, name))
    assert (got.outputs is None) == (want.outputs is None)
    if got.outputs is not None and want.outputs is not None:
        for name in ("logits", "classifier_inputs", "classifier_weight", "classifier_bias"):
            assert_same_tensor(getattr(got.outputs, name), getattr(want.outputs, name))
        assert (got.outputs.classifier_layer, got.outputs.feeding_layer) == (
            want.outputs.classifier_layer,
            want.outputs.feeding_layer,
        )
    assert len(got.connections) == len(want.connections)
    for mine_link, their_link in zip(got.connections, want.connections, strict=True):
        assert_same_tensor(mine_link.weights, their_link.weights)
        assert (mine_link.from_layer, mine_link.to_layer, mine_link.kind, mine_link.note) == (
            their_link.from_layer,
            their_link.to_layer,
            their_link.kind,
            their_link.note,
        )
    assert got.weight_concept_agreement == want.weight_concept_agreement


def assert_same_tensor(got: torch.Tensor | None, want: torch.Tensor | None) -> None:
    """Assert two optional tensors are both None or equal in dtype, shape and values."""
    assert (got is None) == (want is None)
    if got is not None and want is not None:
        assert got.dtype == want.dtype and torch.equal(got, want)
