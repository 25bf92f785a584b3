"""The held-out evaluation through the real pipeline: a warm rerun reads every layer's evaluation from the cache
(the evaluation kernel runs 0 times) with identical results, coverages and verdicts, and a changed input
recomputes."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

import dissect_core.pipeline as pipeline
from dissect_core.config import DissectConfig
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult
from tests.conftest import TINY_CLIP, make_probe_folder

pytestmark = pytest.mark.usefixtures("tiny_clip")

LAYERS = ("layer2", "layer3")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> DissectConfig:
    """A seeded dissection of a random ResNet-18's two layers over 30 random images in two classes."""
    root = tmp_path_factory.mktemp("evaluation-cache")
    concepts = root / "concepts.txt"
    concepts.write_text("dots\nstripes\ncat\ndog\ncar\nsky\n")
    return DissectConfig(
        model="resnet18",
        weights="none",
        layers=LAYERS,
        probe=str(make_probe_folder(root / "probe", n_images=30)),
        concepts=str(concepts),
        encoder=TINY_CLIP,
        similarity_params={"top_k": 4},
        n_folds=5,
        n_top_images=5,
    )


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> Callable[[DissectConfig, Path], tuple[DissectionResult, int]]:
    """Run a dissection with the cache under a folder; return its result and how often the evaluation ran."""

    def run(config: DissectConfig, cache_dir: Path) -> tuple[DissectionResult, int]:
        calls = 0
        real = pipeline.evaluate_layer

        def evaluate_layer(*args: Any, **kwargs: Any) -> Any:
            nonlocal calls
            calls += 1
            return real(*args, **kwargs)

        monkeypatch.setattr(pipeline, "evaluate_layer", evaluate_layer)
        result = run_dissection(config, cache_dir=cache_dir)
        monkeypatch.setattr(pipeline, "evaluate_layer", real)
        return result, calls

    return run


def evaluations(result: DissectionResult) -> list[Any]:
    """Return every layer's summary and its neurons' labels and evaluations."""
    return [(layer.evaluation, [(n.label, n.score, n.evaluation) for n in layer.neurons]) for layer in result.layers]


def grades(result: DissectionResult) -> list[Any]:
    """Return every neuron's label, coverage and verdict, and the run's carry bars and reference spreads."""
    assert result.carry_cosines is not None and result.reference_spreads is not None
    neurons = [(n.label, n.coverage, n.verdict) for layer in result.layers for n in layer.neurons]
    return [neurons, result.carry_cosines.tolist(), result.reference_spreads.tolist()]


def test_a_warm_rerun_does_no_evaluation_and_a_changed_input_recomputes(
    config: DissectConfig, counted: Callable[[DissectConfig, Path], tuple[DissectionResult, int]], tmp_path: Path
) -> None:
    cold, cold_calls = counted(config, tmp_path)
    assert cold_calls == len(LAYERS)
    assert all(layer.evaluation is not None for layer in cold.layers)
    assert len(list((tmp_path / "evaluation").glob("*.safetensors"))) == len(LAYERS)

    warm, warm_calls = counted(config, tmp_path)
    assert warm_calls == 0
    assert evaluations(warm) == evaluations(cold)
    # A cold run's evaluation once centred the dense cosine matrix in place, so its coverages (and ceilings, and
    # verdicts) read other cosines than a warm rerun's, which skips the evaluation: 0 against 2 carrying images.
    assert grades(warm) == grades(cold)

    uncached, uncached_calls = counted(config, tmp_path / "elsewhere")
    assert uncached_calls == len(LAYERS)
    assert evaluations(uncached) == evaluations(cold)  # the cached evaluation is what a fresh one gives
    assert grades(uncached) == grades(cold)

    for changed in (
        replace(config, false_discovery_rate=0.1),
        replace(config, n_folds=3),
        replace(config, simulation="softmax"),
        replace(config, similarity_params={"top_k": 3}),
        replace(config, pool="max"),
    ):
        _, calls = counted(changed, tmp_path)
        assert calls == len(LAYERS), changed
    _, one_layer_calls = counted(replace(config, layers=("layer3",)), tmp_path)
    assert one_layer_calls == 0  # each layer is its own entry
