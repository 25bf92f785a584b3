"""Comparing one layer of two runs: changed share over the shared units, the sorts, ties by unit, the weak cache."""

from __future__ import annotations

import gc

import pytest

from app.read.layers.index import IndexedNeuron, LayerIndex
from app.read.runs.compare import RunsNotComparable, _Comparisons, check_comparable, compare_layers
from app.read.schemas.layers import LayerScoreStats
from app.read.schemas.neurons import NeuronSummary
from app.read.schemas.runs import RunDetail


def make_index(run_id: int, labels: dict[int, tuple[str, float]], n_units: int = 6) -> LayerIndex:
    stats = LayerScoreStats(score_min=0.0, score_max=1.0, low_confidence_below=0.2)
    neurons = tuple(
        IndexedNeuron(
            summary=NeuronSummary(
                unit=unit, label=label, score=score, low_confidence=False, score_fraction=0.5, top_images=[]
            ),
            top_images=(),
            runners_up=(),
            label_folded=label.casefold(),
        )
        for unit, (label, score) in labels.items()
    )
    return LayerIndex(run_id=run_id, layer="layer4", layer_kind="conv", n_units=n_units, stats=stats, neurons=neurons)


MINE = {0: ("dog", 0.5), 1: ("cat", 0.4), 2: ("car", 0.3), 3: ("sky", 0.2), 5: ("sea", 0.9)}
THEIRS = {0: ("dog", 0.7), 1: ("tiger", 0.1), 2: ("car", 0.3), 3: ("cloud", 0.6), 4: ("tree", 0.5)}


def test_the_changed_share_counts_the_units_both_runs_have() -> None:
    comparison = compare_layers(make_index(1, MINE), make_index(2, THEIRS))
    assert [neuron.unit for neuron in comparison.neurons] == [0, 1, 2, 3]  # 4 and 5 are in one run only
    change = comparison.change
    assert (change.name, change.n_units, change.n_changed, change.share_changed) == ("layer4", 4, 2, 0.5)
    assert change.mean_delta == pytest.approx((0.2 - 0.3 + 0.0 + 0.4) / 4)
    first = comparison.neurons[1]
    assert (first.label, first.other_label, first.changed) == ("cat", "tiger", True)
    assert first.delta == pytest.approx(-0.3)
    assert first.url == "/runs/1/layers/layer4/neurons/1" and first.other_url == "/runs/2/layers/layer4/neurons/1"


@pytest.mark.parametrize(
    ("sort", "units"),
    [
        ("unit", [0, 1, 2, 3]),
        ("-unit", [3, 2, 1, 0]),
        ("delta", [1, 2, 0, 3]),
        ("-delta", [3, 0, 2, 1]),
        ("abs_delta", [2, 0, 1, 3]),
        ("-abs_delta", [3, 1, 0, 2]),
        ("changed", [3, 1, 0, 2]),
    ],
)
def test_each_sort_orders_the_compared_neurons(sort: str, units: list[int]) -> None:
    comparison = compare_layers(make_index(1, MINE), make_index(2, THEIRS))
    assert [neuron.unit for neuron in comparison.ordered(sort)] == units  # type: ignore[arg-type]


def test_a_layer_without_shared_units_compares_as_empty() -> None:
    change = compare_layers(make_index(1, {0: ("a", 1.0)}), make_index(2, {1: ("b", 1.0)})).change
    assert (change.n_units, change.share_changed, change.mean_delta) == (0, 0.0, 0.0)


def test_comparisons_are_kept_as_long_as_both_indexes() -> None:
    cache = _Comparisons()
    mine, theirs = make_index(1, MINE), make_index(2, THEIRS)
    first = cache.get(mine, theirs)
    assert cache.get(mine, theirs) is first
    del mine, first
    gc.collect()
    assert len(cache._by_index) == 0


def run(run_id: int, architecture: str) -> RunDetail:
    return RunDetail.model_validate(
        {
            "id": run_id, "model_name": architecture, "architecture": architecture, "encoder": "e",
            "similarity": "s", "pooling": "avg", "probe_set": "p", "n_images": 1, "concept_set": "c",
            "probe_set_display_name": "p (1 image)", "n_concepts": 1, "n_layers": 0, "n_neurons": 0,
            "code_version": "0", "created_at": "2025-01-01T00:00:00Z",
            "settings_summary": "", "settings": {}, "similarity_params": {}, "layers": [],
        }
    )  # fmt: skip


def test_runs_of_different_architectures_are_refused_naming_both() -> None:
    check_comparable(run(1, "resnet18"), run(2, "resnet18"))
    with pytest.raises(RunsNotComparable, match=r"Run #1 dissected resnet18 and run #2 dissected vit_b_16"):
        check_comparable(run(1, "resnet18"), run(2, "vit_b_16"))
