"""The evaluation cache: entries round-trip exactly, bad files are misses, and every key input changes the key."""

from __future__ import annotations

from dataclasses import fields, replace
from pathlib import Path
from typing import Any

import pytest
import torch

from dissect_core.evaluation.cache import EvaluationCache, EvaluationInputs, evaluation_key
from dissect_core.evaluation.evaluate import EvaluationSettings, evaluate_layer
from dissect_core.results import LayerEvaluation, NeuronEvaluation, WeightedConcept
from dissect_core.similarity.cosine import CosineSource
from dissect_core.similarity.functions import soft_wpmi
from tests.unit.dissect_core.evaluation.conftest import make_probe

INPUTS = EvaluationInputs(
    target="torchvision:resnet18:none@0",
    pool="avg",
    preprocessing={"resize": 256, "crop": 224},
    probe_hash="probe",
    encoder="open_clip:ViT-B-16:none",
    encoder_preprocessing="Compose(...)",
    concept_hash="concepts",
    prompt_template=None,
    similarity="soft_wpmi",
    similarity_params={"top_k": 5, "lam": 1.0},
    softmax_a=10.0,
    settings=EvaluationSettings(),
    image_ids=("a", "b", "c"),
    image_labels=("cat", None, "dog"),
    folds=torch.tensor([0, 1, 0]),
)
#: For each field of EvaluationInputs, another value.
CHANGED: dict[str, Any] = {
    "target": "torchvision:resnet18:none@1",
    "pool": "max",
    "preprocessing": {"resize": 224, "crop": 224},
    "probe_hash": "other probe",
    "encoder": "open_clip:ViT-B-32:none",
    "encoder_preprocessing": "Compose(other)",
    "concept_hash": "other concepts",
    "prompt_template": "a photo of {}",
    "similarity": "wpmi",
    "similarity_params": {"top_k": 6, "lam": 1.0},
    "softmax_a": 5.0,
    "settings": EvaluationSettings(n_folds=4),
    "image_ids": ("a", "b", "d"),
    "image_labels": ("cat", "", "dog"),
    "folds": torch.tensor([1, 0, 0]),  # the same ids and labels dealt otherwise
}


def score_fn(cosine: CosineSource, activations: torch.Tensor) -> torch.Tensor:
    return soft_wpmi(cosine, activations, top_k=10)


def test_every_input_of_the_key_changes_it() -> None:
    assert set(CHANGED) == {field.name for field in fields(EvaluationInputs)}
    digest = INPUTS.digest()
    assert replace(INPUTS).digest() == digest
    for name, value in CHANGED.items():
        assert replace(INPUTS, **{name: value}).digest() != digest, name
    for settings in (
        EvaluationSettings(simulation="softmax"),
        EvaluationSettings(false_discovery_rate=0.1),
        EvaluationSettings(max_terms=3),
    ):
        assert replace(INPUTS, settings=settings).digest() != digest
    labels = torch.tensor([0, 1, 2])
    key = evaluation_key(digest, "layer4", labels)
    assert evaluation_key(digest, "layer4", labels.clone()) == key
    assert evaluation_key(digest, "layer3", labels) != key
    assert evaluation_key(digest, "layer4", torch.tensor([0, 1, 1])) != key
    assert evaluation_key(replace(INPUTS, pool="max").digest(), "layer4", labels) != key


def test_a_real_evaluation_round_trips_exactly(tmp_path: Path) -> None:
    probe = make_probe(n_images=60, n_concepts=40, dim=32)
    activations = torch.randn(60, 6, generator=torch.Generator().manual_seed(1))
    labels = score_fn(probe.cosine, activations).argmax(dim=1)
    image_labels = ["c1" if i % 2 else None for i in range(60)]
    settings = EvaluationSettings()
    neurons, summary = evaluate_layer(
        score_fn, probe.cosine, probe.signals, activations, labels, probe.folds, probe.concepts, settings, image_labels
    )
    assert any(neuron.explanation for neuron in neurons)
    cache = EvaluationCache(tmp_path)
    cache.save("key", neurons, summary, probe.concepts)
    assert cache.load("key", probe.concepts, len(neurons)) == (neurons, summary)


def test_none_ground_truth_empty_explanations_and_no_reliable_label_round_trip(tmp_path: Path) -> None:
    neurons = [
        NeuronEvaluation(0.1, 0.3, False, 0.4, (), -0.2, None),
        NeuronEvaluation(0.5, 1e-9, True, 1.0, (WeightedConcept("dog", 0.25),), 0.55, 0.125),
    ]
    summary = LayerEvaluation(5, "cosine", 0.05, 30, 0.2, None, 0.0)
    cache = EvaluationCache(tmp_path)
    cache.save("key", neurons, summary, ["cat", "dog"])
    assert cache.load("key", ["cat", "dog"], 2) == (neurons, summary)


def test_missing_torn_foreign_or_misshapen_entries_are_misses(tmp_path: Path) -> None:
    cache = EvaluationCache(tmp_path)
    neurons = [NeuronEvaluation(0.1, 0.3, False, 0.4, (), -0.2, None)]
    summary = LayerEvaluation(5, "cosine", 0.05, 30, 0.2, None, 0.0)
    assert cache.load("absent", ["cat"], 1) is None
    cache.save("key", neurons, summary, ["cat"])
    assert cache.load("key", ["cat"], 2) is None  # another layer's shape
    path = tmp_path / "evaluation" / "key.safetensors"
    path.write_bytes(path.read_bytes()[:-8])  # torn
    assert cache.load("key", ["cat"], 1) is None
    path.write_bytes(b"\x80\x04not a safetensors file")
    assert cache.load("key", ["cat"], 1) is None
    assert list(path.parent.iterdir()) == [path]  # no temporary left behind


def test_no_root_stores_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    cache = EvaluationCache(None)
    cache.save("key", [], LayerEvaluation(5, "cosine", 0.05, 30, 0.2, None, 0.0), [])
    assert cache.load("key", [], 0) is None
    assert not list(tmp_path.iterdir())
