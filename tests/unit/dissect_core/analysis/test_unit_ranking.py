"""The units one image drives most, by activation and by z-score, with exact percentiles and stable ties."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.standardise import LayerStandardiser
from dissect_core.analysis.unit_ranking import percentiles, rank_activations, rank_units


def test_ranks_by_activation_and_by_z_score_with_percentiles() -> None:
    # Unit 0 is high on every image (image 2 ordinary for it); unit 1 is quiet except on image 2; unit 2 is constant.
    acts = torch.tensor([[10.0, 0.0, 5.0], [11.0, 0.0, 5.0], [10.5, 1.0, 5.0], [9.0, 0.0, 5.0]])
    loudest, unusual = rank_units(LayerStandardiser.from_activations(acts), 2, k=2)
    assert loudest.units.tolist() == [0, 2] and loudest.activations.tolist() == [10.5, 5.0]
    assert unusual.units[0].item() == 1
    assert unusual.z_scores[0].item() == pytest.approx((1.0 - 0.25) / torch.tensor([0.0, 0, 1, 0]).std(unbiased=False))
    assert unusual.percentiles[0].item() == pytest.approx(100 * 3.5 / 4)  # above 3 images, tied with itself
    assert loudest.percentiles.tolist() == pytest.approx([100 * 2.5 / 4, 50.0])  # a constant unit: all tied
    assert loudest.z_scores[1].item() == 0.0  # constant units have z 0, never a division by zero


def test_equal_activations_and_equal_z_scores_rank_the_lower_unit_first() -> None:
    # Three images by five units: 0 constant at 2, 1 rising, 2 dead, 3 constant at 2, 4 high on image 0 only.
    acts = torch.tensor([[2.0, 0.0, 0.0, 2.0, 2.0], [2.0, 1.0, 0.0, 2.0, 0.0], [2.0, 2.0, 0.0, 2.0, 0.0]])
    loudest, unusual = rank_units(LayerStandardiser.from_activations(acts), 0, k=4)
    assert loudest.units.tolist() == [0, 3, 4, 1]  # units 0, 3 and 4 all at 2; then 1 and 2 at 0
    # z on image 0: unit 4 sqrt(2), units 0, 2 and 3 (constant) 0, unit 1 -sqrt(1.5)
    assert unusual.units.tolist() == [4, 0, 2, 3]
    assert unusual.z_scores.tolist() == pytest.approx([2**0.5, 0.0, 0.0, 0.0])


def test_percentiles_count_ties_half() -> None:
    layer = LayerStandardiser.from_activations(torch.tensor([[1.0], [2.0], [2.0], [3.0]]))
    assert percentiles(layer, 1, torch.tensor([0])).tolist() == pytest.approx([100 * (1 + 0.5 * 2) / 4])


def test_k_larger_than_the_layer_gives_every_unit() -> None:
    loudest, unusual = rank_units(LayerStandardiser.from_activations(torch.randn(5, 3)), 0, k=8)
    assert sorted(loudest.units.tolist()) == [0, 1, 2] and len(unusual.units) == 3


def test_an_image_outside_the_probe_set_ranks_as_a_probe_image_with_its_activations_would() -> None:
    acts = torch.tensor([[10.0, 0.0, 5.0], [11.0, 0.0, 5.0], [10.5, 1.0, 5.0], [9.0, 0.0, 5.0]])
    layer = LayerStandardiser.from_activations(acts)
    inside = rank_units(layer, 2, k=3)
    outside = rank_activations(layer, acts[2], k=3)
    for probe, external in zip(inside, outside, strict=True):
        assert external.units.tolist() == probe.units.tolist()
        assert external.activations.tolist() == probe.activations.tolist()
        assert external.percentiles.tolist() == pytest.approx(probe.percentiles.tolist())
        assert external.z_scores.tolist() == pytest.approx(probe.z_scores.tolist())
    # Above every probe image on unit 1 (the image is not among them: no tie with itself).
    _, unusual = rank_activations(layer, torch.tensor([9.0, 3.0, 5.0]), k=1)
    assert unusual.units.tolist() == [1] and unusual.percentiles.tolist() == [100.0]
