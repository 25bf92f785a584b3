"""The paper's weight finding: its statistics by hand, and a permutation null that reads random weights as chance."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.weight_agreement import pearson_r, weight_concept_agreement


def _similarity(n_classes: int, n_units: int, seed: int) -> torch.Tensor:
    return torch.rand(n_classes, n_units, generator=torch.Generator().manual_seed(seed))


def test_random_weights_read_as_chance_at_the_stated_rate():
    below = 0
    for seed in range(40):
        generator = torch.Generator().manual_seed(1000 + seed)
        weights = torch.randn(30, 20, generator=generator)
        finding = weight_concept_agreement(
            "a", "b", weights, _similarity(30, 20, seed), torch.rand(20, generator=generator)
        )
        below += finding.p_value < 0.05
    assert below <= 4  # at most ~10% of 40 under the null (5% expected)


def test_weights_that_follow_the_labels_are_found_with_the_paper_statistics():
    similarity = _similarity(30, 20, 0)
    weights = similarity + 0.1 * torch.randn(30, 20, generator=torch.Generator().manual_seed(1))
    scores = torch.rand(20, generator=torch.Generator().manual_seed(2))
    finding = weight_concept_agreement("layer4", "fc", weights, similarity, scores, n_permutations=99)
    assert finding.pearson_r == pytest.approx(pearson_r(weights, similarity)) and finding.pearson_r > 0.9
    assert finding.p_value == pytest.approx(1 / 100)
    assert finding.top_unit_r == pytest.approx(pearson_r(scores, weights.max(dim=0).values))
    assert finding.all_pairs_mean == pytest.approx(float(similarity.mean()))
    assert [k for k, _ in finding.curve] == [4, 8, 16, 32, 64, 128, 256, 512]
    top4 = similarity.flatten()[weights.flatten().argsort(descending=True)[:4]].mean()
    assert finding.curve[0][1] == pytest.approx(float(top4))
