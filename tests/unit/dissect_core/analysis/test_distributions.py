"""The distribution maths, checked against hand-computed answers: bins, histograms, band ranks, layer evidence."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.analysis.distributions import (
    RANDOM_BAND,
    band_ranks,
    bin_counts,
    distribution_seed,
    histogram,
    layer_evidence,
    quantile_bands,
)
from dissect_core.analysis.standardise import LayerStandardiser


def test_histogram_bins_equal_width_with_the_maximum_in_the_last_bin() -> None:
    values = torch.tensor([0.0, 0.5, 1.0, 2.4, 2.5, 4.0, float("nan")])
    bins = histogram(values, 4)  # edges 0, 1, 2, 3, 4
    assert (bins.low, bins.high) == (0.0, 4.0)
    assert bins.counts.tolist() == [2, 1, 2, 1]
    assert bins.edges.tolist() == [0.0, 1.0, 2.0, 3.0, 4.0]


def test_a_constant_neuron_gets_one_bar_around_its_value() -> None:
    bins = histogram(torch.full((10,), 2.0), 5)
    assert bins.low < 2.0 < bins.high
    assert bins.counts.tolist() == [0, 0, 10, 0, 0]


def test_histogram_refuses_no_bins() -> None:
    with pytest.raises(ValueError, match="n_bins must be at least 1"):
        histogram(torch.zeros(3), 0)


def test_bins_are_equal_with_lower_edges_inclusive() -> None:
    counts = bin_counts(torch.tensor([0.0, 0.1, 0.25, 0.26, 0.5], dtype=torch.float64), 4, 0.0, 1.0)
    assert counts.tolist() == [2, 2, 1, 0]


def test_values_outside_the_range_count_in_the_end_bins_and_non_finite_ones_nowhere() -> None:
    values = torch.tensor([-0.9, -0.2, 1.0, 3.0, math.nan, math.inf, -math.inf])
    assert bin_counts(values, 6, -0.2, 1.0).tolist() == [2, 0, 0, 0, 0, 2]


def test_an_empty_range_is_refused_with_what_was_asked() -> None:
    with pytest.raises(ValueError, match=r"0 bins over \[0.0, 1.0\]"):
        bin_counts(torch.tensor([0.5]), 0, 0.0, 1.0)
    with pytest.raises(ValueError, match="non-empty range"):
        bin_counts(torch.tensor([0.5]), 3, 1.0, 1.0)


def test_band_ranks_at_100_and_50_images() -> None:
    assert band_ranks(100) == [("top 1%", 0, 1), ("1–5%", 1, 5), ("5–20%", 5, 20), ("20–50%", 20, 50)]
    assert band_ranks(50) == [("top 1%", 0, 1), ("1–5%", 1, 3), ("5–20%", 3, 10), ("20–50%", 10, 25)]
    assert band_ranks(10)[1] == ("1–5%", 1, 1)  # too thin a band for 10 images holds none


def test_bands_hold_images_of_their_ranks_highest_first() -> None:
    values = torch.arange(100, dtype=torch.float32).flip(0)  # image i has activation 99 - i: rank i
    bands = quantile_bands(values, per_band=3, seed=7)
    assert [band.name for band in bands] == ["top 1%", "1–5%", "5–20%", "20–50%", RANDOM_BAND]
    top, second, third, fourth, sample = bands
    assert top.images.tolist() == [0]
    assert (top.low, top.high) == (99.0, 99.0)
    assert all(1 <= i < 5 for i in second.images.tolist()) and len(second.images) == 3
    assert all(5 <= i < 20 for i in third.images.tolist())
    assert all(20 <= i < 50 for i in fourth.images.tolist())
    assert (fourth.high, fourth.low) == (79.0, 50.0)
    for band in bands:
        ranks = band.images.tolist()
        assert ranks == sorted(ranks) and len(set(ranks)) == len(ranks)  # highest activation first, no repeats
    assert sample.size == 100 and len(sample.images) == 3


def test_bands_are_reproducible_per_seed() -> None:
    values = torch.randn(500, generator=torch.Generator().manual_seed(0))
    first = [band.images.tolist() for band in quantile_bands(values, 6, seed=3)]
    assert first == [band.images.tolist() for band in quantile_bands(values, 6, seed=3)]
    assert first != [band.images.tolist() for band in quantile_bands(values, 6, seed=4)]


def test_distribution_seed_is_stable_and_differs_per_neuron() -> None:
    assert distribution_seed(1, "fc", 3) == distribution_seed(1, "fc", 3)
    assert len({distribution_seed(1, "fc", 3), distribution_seed(1, "fc", 4), distribution_seed(2, "fc", 3)}) == 3
    assert 0 <= distribution_seed(1, "fc", 3) < 2**63


def test_layer_evidence_equals_the_one_unit_answers() -> None:
    # What a page looks up (computed for a whole layer at once) must be what the one-unit functions give.
    activations = torch.randn(300, 7, generator=torch.Generator().manual_seed(0))
    activations[:, 1] = 0.0  # a dead unit: one bar, bands of equal activations
    layer = LayerStandardiser.from_activations(activations)
    evidence = layer_evidence(layer, 8, 2, seeds=list(range(7)))
    for unit in range(7):
        values = layer.unit_activations(unit)
        assert torch.equal(evidence.histograms[unit].counts, histogram(values, 8).counts)
        expected = quantile_bands(values, 2, unit)
        assert [band.images.tolist() for band in evidence.bands[unit]] == [b.images.tolist() for b in expected]
