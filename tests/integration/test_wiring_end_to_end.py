"""A real dissection of a seeded small network with two dissected layers and its classifier stores its outputs,
connections and weight finding, and the artifacts reader reads them back as they were."""

from __future__ import annotations

import pytest
import torch

from app.persistence.store.artifacts import write_artifacts
from app.read.artifacts.reader import ArtifactsReader
from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection

pytestmark = pytest.mark.usefixtures("tiny_clip")


def test_a_dissection_stores_and_reads_back_outputs_connections_and_the_weight_finding(
    probe_folder, concept_file, tmp_path
):
    class_names = [f"class {index}" for index in range(1000)]
    config = DissectConfig(
        model="resnet18", weights="none", layers=("layer3", "layer4", "fc"), probe=str(probe_folder),
        concepts=str(concept_file), encoder="tiny_clip:none", similarity_params={"top_k": 4}, n_folds=0,
        preprocessing={"resize": 64, "crop": 64}, class_names=tuple(class_names),
    )  # fmt: skip
    result = run_dissection(config, cache_dir=tmp_path / "cache")

    outputs = result.outputs
    assert outputs is not None and outputs.logits.shape == (24, 1000)
    assert (outputs.classifier_layer, outputs.feeding_layer) == ("fc", "layer4")
    assert outputs.classifier_inputs is not None
    # fc receives layer4's mean-pooled map: the recorded inputs are the layer's own pooled activations.
    assert torch.allclose(outputs.classifier_inputs, result.layer("layer4").activations, atol=1e-5)
    kinds = {(c.from_layer, c.to_layer): c.kind for c in result.connections}
    assert kinds == {("layer3", "layer4"): "attribution", ("layer3", "fc"): "attribution", ("layer4", "fc"): "weight"}
    assert [(a.from_layer, a.to_layer) for a in result.weight_concept_agreement] == [("layer4", "fc")]
    assert "connections" in result.record.facts.timings_s
    # A warm rerun runs no probe pass, yet has the same outputs: they are cached with the activations.
    warm = run_dissection(config, cache_dir=tmp_path / "cache")
    assert warm.outputs is not None and torch.equal(warm.outputs.logits, outputs.logits)
    assert warm.outputs.feeding_layer == "layer4"

    run_dir = write_artifacts(tmp_path / "runs", result, {})
    reader = ArtifactsReader(tmp_path)
    stored = reader.outputs(run_dir)
    assert stored is not None and (stored.classifier_layer, stored.feeding_layer) == ("fc", "layer4")
    assert torch.allclose(stored.logits, outputs.logits, atol=1e-2, rtol=1e-3)  # float16 on disk
    assert stored.classifier_weight is not None and torch.equal(stored.classifier_weight, outputs.classifier_weight)
    read = reader.connections(run_dir)
    assert [(c.from_layer, c.to_layer, c.kind, c.n_images) for c in read] == [
        (c.from_layer, c.to_layer, c.kind, c.n_images) for c in result.connections
    ]
    assert all(torch.equal(a.weights, b.weights) for a, b in zip(read, result.connections, strict=True))
    assert reader.agreement(run_dir) == result.weight_concept_agreement


def test_a_run_stored_before_them_reads_as_none(tmp_path):
    reader = ArtifactsReader(tmp_path)
    (tmp_path / "old").mkdir()
    assert (reader.outputs("old"), reader.connections("old"), reader.agreement("old")) == (None, [], [])
