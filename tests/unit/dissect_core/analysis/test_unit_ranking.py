"""UnitStandardiser: the units one image drives most, by activation and by z-score, with exact percentiles."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.unit_ranking import UnitStandardiser


def test_ranks_by_activation_and_by_z_score_with_percentiles() -> None:
    # Unit 0 is high on every image (image 2 ordinary for it); unit 1 is quiet except on image 2; unit 2 is constant.
    acts = torch.tensor([[10.0, 0.0, 5.0], [11.0, 0.0, 5.0], [10.5, 1.0, 5.0], [9.0, 0.0, 5.0]])
    loudest, unusual = UnitStandardiser(acts).rank(2, k=2)
    assert loudest.units.tolist() == [0, 2] and loudest.activations.tolist() == [10.5, 5.0]
    assert unusual.units[0].item() == 1
    assert unusual.z_scores[0].item() == pytest.approx((1.0 - 0.25) / torch.tensor([0.0, 0, 1, 0]).std(unbiased=False))
    assert unusual.percentiles[0].item() == pytest.approx(100 * 3.5 / 4)  # above 3 images, tied with itself
    assert loudest.percentiles.tolist() == pytest.approx([100 * 2.5 / 4, 50.0])  # a constant unit: all tied
    assert loudest.z_scores[1].item() == 0.0  # constant units have z 0, never a division by zero


def test_k_larger_than_the_layer_gives_every_unit() -> None:
    loudest, unusual = UnitStandardiser(torch.randn(5, 3)).rank(0, k=8)
    assert sorted(loudest.units.tolist()) == [0, 1, 2] and len(unusual.units) == 3


def test_activations_must_be_images_by_units() -> None:
    with pytest.raises(ValueError, match=r"\[images, units\]"):
        UnitStandardiser(torch.randn(4))
