"""Label-free scores on planted embeddings, worked by hand, and their random baseline."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.analysis.label_free import (
    clarity,
    layer_label_free_scores,
    polysemanticity,
    random_baseline,
    random_image_sets,
    redundancy,
)

E1, E2, E3 = torch.eye(3)


def test_clarity_is_the_mean_pairwise_cosine() -> None:
    assert clarity(torch.stack([E1, E1, 2 * E1])) == pytest.approx(1.0)
    assert clarity(torch.stack([E1, E2, E3])) == pytest.approx(0.0)
    # pairs: (e1, e1) 1, (e1, e2) 0 twice: a mean of 1/3
    assert clarity(torch.stack([E1, E1, E2])) == pytest.approx(1 / 3)
    with pytest.raises(ValueError, match="at least 2"):
        clarity(E1.unsqueeze(0))


def test_polysemanticity_is_one_minus_the_cosine_of_two_kmeans_centres() -> None:
    assert polysemanticity(torch.stack([E1, E1, E1, 3 * E1])) == pytest.approx(0.0)
    # two groups at right angles: the centres are e1 and e2, cosine 0
    assert polysemanticity(torch.stack([E1, E1, E2, 2 * E2])) == pytest.approx(1.0)
    # opposite groups: cosine -1
    assert polysemanticity(torch.stack([E1, -E1, E1, -E1])) == pytest.approx(2.0)
    # e1, e1 and a point between e1 and e2: the centres are e1 and (e1 + e2)/sqrt(2), cosine 1/sqrt(2)
    tilted = (E1 + E2) / math.sqrt(2)
    assert polysemanticity(torch.stack([E1, E1, tilted])) == pytest.approx(1 - 1 / math.sqrt(2), abs=1e-6)


def test_redundancy_is_the_highest_cosine_to_another_unit() -> None:
    means = torch.stack([E1, E1 + 0.1 * E2, E3])
    expected = [1 / math.sqrt(1.01), 1 / math.sqrt(1.01), 0.0]
    assert redundancy(means).tolist() == pytest.approx(expected, abs=1e-6)
    assert math.isnan(float(redundancy(E1.unsqueeze(0))[0]))


def test_a_layers_scores_use_each_units_top_images_and_beat_the_random_baseline() -> None:
    generator = torch.Generator().manual_seed(0)
    embeddings = torch.randn(100, 16, generator=generator)
    embeddings[:10] = torch.randn(16, generator=generator) + 0.05 * torch.randn(10, 16, generator=generator)
    top = torch.stack([torch.arange(10), torch.arange(50, 60)])
    scores = layer_label_free_scores(embeddings, top, n_top=10)
    assert float(scores.clarity[0]) > 0.95 and abs(float(scores.clarity[1])) < 0.2
    baseline = random_baseline(embeddings, n_top=10, n_sets=64)
    assert baseline.clarity.shape == (64,) and float(baseline.clarity.max()) < float(scores.clarity[0])
    assert torch.equal(baseline.clarity, random_baseline(embeddings, n_top=10, n_sets=64).clarity)  # seeded


@pytest.mark.parametrize("n_images", [30, 50_000])  # by permutations, and by draws with the repeats drawn again
def test_random_image_sets_hold_distinct_images_and_are_seeded(n_images: int) -> None:
    sets = random_image_sets(n_images, n_top=20, n_sets=300)
    assert sets.shape == (300, 20) and int(sets.min()) >= 0 and int(sets.max()) < n_images
    assert all(len(set(row)) == 20 for row in sets.tolist())
    assert torch.equal(sets, random_image_sets(n_images, n_top=20, n_sets=300))
    assert not torch.equal(sets, random_image_sets(n_images, n_top=20, n_sets=300, seed=1))
