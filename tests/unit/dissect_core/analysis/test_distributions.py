"""The distribution maths, checked against hand-computed answers: histogram bins, band ranks, r ordering."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.distributions import (
    RANDOM_BAND,
    band_ranks,
    centred_unit,
    distribution_seed,
    histogram,
    most_correlated,
    quantile_bands,
    sketch_sample,
    standardise,
)


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


def test_standardised_rows_give_pearson_r_and_rebuild_the_activations() -> None:
    activations = torch.tensor([[1.0, 2.0, 5.0, 3.0], [2.0, 4.0, 5.0, 1.0], [3.0, 6.0, 5.0, 2.0]])
    layer = standardise(activations)
    assert layer.z.shape == (4, 3)
    assert layer.varies.tolist() == [True, True, False, True]
    assert float(layer.z[0] @ layer.z[1]) == pytest.approx(1.0)  # unit 1 = 2 × unit 0
    # unit 0 = (1, 2, 3), unit 3 = (3, 1, 2): centred (-1, 0, 1) and (1, -1, 0): r = -1 / 2
    assert float(layer.z[0] @ layer.z[3]) == pytest.approx(-0.5)
    assert layer.activations(3).tolist() == [3.0, 1.0, 2.0]
    assert layer.activations(2).tolist() == [5.0, 5.0, 5.0]


def test_most_correlated_orders_by_r_and_skips_itself_and_constant_units() -> None:
    base = torch.tensor([1.0, 2.0, 3.0, 4.0])
    columns = [
        base,
        -base,
        base * 3,
        torch.ones(4),
        torch.tensor([1.0, 2.0, 4.0, 3.0]),
        torch.tensor([2.0, 1.0, 4.0, 3.0]),
    ]
    layer = standardise(torch.stack(columns, dim=1))
    units, r = most_correlated(centred_unit(layer.values[0]), layer.z[0], layer, k=4, exclude=0)
    assert units.tolist() == [2, 4, 5, 1]  # r 1, 0.8, 0.6, -1; unit 3 is constant
    assert r.tolist() == pytest.approx([1.0, 0.8, 0.6, -1.0])
    units, _ = most_correlated(centred_unit(layer.values[0]), layer.z[0], layer, k=2)
    assert units.tolist() == [0, 2]


def test_correlations_over_a_sketch_sample_are_reported_exactly() -> None:
    generator = torch.Generator().manual_seed(0)
    base = torch.randn(3000, generator=generator)
    noise = torch.randn(3000, 6, generator=generator)
    columns = torch.stack([base + scale * noise[:, j] for j, scale in enumerate((0.0, 0.2, 0.5, 1.0, 2.0, 4.0))], 1)
    columns = columns.half().float()
    layer = standardise(columns, sketch_images=500)
    assert layer.z.shape == (6, 500) and layer.values.shape == (6, 3000)
    units, r = most_correlated(centred_unit(layer.values[0]), layer.z[0], layer, k=5, exclude=0, candidates=2)
    assert units.tolist() == [1, 2, 3, 4, 5]
    expected = [float(torch.corrcoef(columns[:, [0, j]].T.double())[0, 1]) for j in (1, 2, 3, 4, 5)]
    assert r.tolist() == pytest.approx(expected, abs=1e-5)  # over all 3,000 images, not the sample's 500
    assert float(centred_unit(layer.values[0]).norm()) == pytest.approx(1.0)
    assert float(centred_unit(layer.values[0]).sum()) == pytest.approx(0.0, abs=1e-4)


def test_sketch_sample_is_fixed_and_covers_small_probe_sets() -> None:
    assert sketch_sample(10, 20).tolist() == list(range(10))
    sample = sketch_sample(10_000, 100)
    assert sample.numel() == 100 and sample.tolist() == sorted(set(sample.tolist()))
    assert torch.equal(sample, sketch_sample(10_000, 100))


def _random_layer(n_images: int, n_units: int, seed: int, sketch_images: int):
    from dissect_core.analysis.distributions import standardise

    generator = torch.Generator().manual_seed(seed)
    shared = torch.randn(n_images, 3, generator=generator)
    activations = shared @ torch.randn(3, n_units, generator=generator) + torch.randn(
        n_images, n_units, generator=generator
    )
    activations[:, 1] = 0.0  # a dead unit: no r with anything
    return standardise(activations, sketch_images=sketch_images)


def test_the_whole_layer_tables_equal_the_one_unit_answers():
    # What a page looks up (computed for a whole layer at once) must be what the one-unit functions give,
    # with a sketch smaller than the probe set (shortlist, then exact r) and with the sketch covering it.
    from dissect_core.analysis.distributions import centred_unit, layer_evidence, most_correlated_all

    for sketch_images in (40, 4096):
        own, other = _random_layer(300, 7, 0, sketch_images), _random_layer(300, 5, 1, sketch_images)
        for target, same in ((own, True), (other, False)):
            units, r = most_correlated_all(own, target, 3, same_layer=same)
            for unit in range(7):
                one_units, one_r = most_correlated(
                    centred_unit(own.values[unit]), own.z[unit], target, 3, exclude=unit if same else None
                )
                if unit == 1:  # constant: nothing is correlated with it
                    assert (units[unit] == -1).all()
                    continue
                kept = units[unit] >= 0
                assert units[unit][kept].tolist() == one_units.tolist()
                assert torch.allclose(r[unit][kept], one_r, atol=1e-5)
        evidence = layer_evidence(own, 8, 2, seeds=list(range(7)))
        for unit in range(7):
            values = own.activations(unit)
            assert torch.equal(evidence.histograms[unit].counts, histogram(values, 8).counts)
            expected = quantile_bands(values, 2, unit)
            assert [band.images.tolist() for band in evidence.bands[unit]] == [b.images.tolist() for b in expected]


def test_tables_against_several_layers_equal_one_layer_at_a_time():
    from dissect_core.analysis.distributions import most_correlated_all, most_correlated_tables

    own, other = _random_layer(300, 7, 0, 40), _random_layer(300, 5, 1, 40)
    tables = most_correlated_tables(own, {"a": own, "b": other}, 3, own_name="a")
    for name, target, same in (("a", own, True), ("b", other, False)):
        units, r = most_correlated_all(own, target, 3, same_layer=same)
        assert torch.equal(tables[name][0], units)
        assert torch.allclose(tables[name][1], r, equal_nan=True)
