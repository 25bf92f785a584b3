"""The run overview's pure parts: binning r into the histogram and summarising one layer's neurons."""

from __future__ import annotations

import math

import pytest

from app.read.runs.overview import HISTOGRAM_BINS, NeuronFacts, r_bin_counts, summarise_layer
from app.read.schemas.layers import LayerEvaluationView, LayerSummary


def layer(evaluation: LayerEvaluationView | None = None) -> LayerSummary:
    return LayerSummary(name="blocks.3", position=1, kind="conv", n_units=4, evaluation=evaluation)


def test_r_outside_the_range_count_in_the_end_bins_and_non_finite_ones_nowhere() -> None:
    # The binning itself is tested in tests/unit/dissect_core/analysis/test_distributions.py.
    counts = r_bin_counts([-0.9, -0.2, 1.0, 3.0, math.nan, math.inf])
    assert len(counts) == HISTOGRAM_BINS and sum(counts) == 4
    assert counts[0] == 2 and counts[-1] == 2


def test_a_layer_stored_before_evaluations_has_only_its_generic_share() -> None:
    neurons = [NeuronFacts(label, None, None, None) for label in ("photo", "dog", "Image ", "sky")]
    overview = summarise_layer(layer(), neurons)
    assert overview.n_evaluated == 0 and overview.share_generic == 0.5
    assert overview.share_reliable is None and overview.mean_explained_r is None
    assert overview.mean_explanation_r is None and overview.histogram is None and overview.evaluation is None


def test_an_evaluated_layer_counts_reliable_and_unreliable_r_apart() -> None:
    evaluation = LayerEvaluationView(
        n_folds=5,
        simulation="cosine",
        false_discovery_rate=0.05,
        n_images=100,
        null_sd=0.1,
        reliable_min_r=0.3,
        share_reliable=0.5,
    )
    neurons = [
        NeuronFacts("dog", 0.4, 0.6, True),
        NeuronFacts("cat", 0.0, 0.2, False),  # an r of exactly 0 still counts
        NeuronFacts("photo", None, 0.1, False),  # an undefined r: evaluated, but in no bin
        NeuronFacts("sky", 0.5, None, True),
    ]
    overview = summarise_layer(layer(evaluation), neurons)
    assert overview.n_evaluated == 4 and overview.share_reliable == 0.5 and overview.share_generic == 0.25
    assert overview.mean_explained_r == pytest.approx(0.3)
    assert overview.mean_explanation_r == pytest.approx(0.3)
    assert overview.histogram is not None
    assert sum(overview.histogram.reliable) == 2 and sum(overview.histogram.unreliable) == 1
    assert overview.histogram.unreliable[r_bin_counts([0.0]).index(1)] == 1
    assert overview.evaluation == evaluation


def test_weak_labels_are_counted_by_the_rules_they_miss() -> None:
    def weak(stability: float, judgeable: bool) -> NeuronFacts:
        return NeuronFacts("dog", 0.2, None, False, "weak", stability=stability, coverage_judgeable=judgeable)

    neurons = [
        weak(0.2, True),  # unstable
        weak(0.8, False),  # uncovered
        weak(0.4, False),  # both
        weak(0.6, True),  # 3 of 5 folds and covered: only the floor is left
        NeuronFacts("cat", 0.5, None, True, "explains", stability=1.0, coverage_judgeable=True),
        NeuronFacts("sky", 0.0, None, False, "no label", stability=0.0, coverage_judgeable=False),
    ]
    overview = summarise_layer(layer(), neurons)
    assert overview.verdict_counts == {"explains": 1, "weak": 4, "no label": 1}
    assert overview.weak_causes == {"uncovered": 2, "unstable": 2, "floor only": 1}
    assert summarise_layer(layer(), neurons[4:]).weak_causes is None
