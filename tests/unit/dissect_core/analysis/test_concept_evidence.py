"""Concept evidence rules on hand-made tensors: top images for a concept, hits, carrying, and the stored bars."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.concept_evidence import (
    CARRY_TOLERANCE,
    carrying,
    concept_cosines,
    hit_threshold,
    hits,
    top_images_for_concept,
)
from dissect_core.similarity.functions import image_log_normalisers
from dissect_core.similarity.row_summaries import CARRY_RANK, image_row_summaries


def test_a_hit_reaches_the_95th_percentile_of_the_neurons_activations() -> None:
    # 100 activations 0..99: the 95th percentile (linear) is 94.05, so 95..99 are hits and 94 is a miss.
    shuffle = torch.randperm(100, generator=torch.Generator().manual_seed(0))
    activations = torch.arange(100, dtype=torch.float32)[shuffle]
    threshold = hit_threshold(activations)
    assert threshold == pytest.approx(94.05)
    fired = hits(activations, threshold)
    assert sorted(activations[fired].int().tolist()) == [95, 96, 97, 98, 99]


def test_an_activation_equal_to_the_threshold_is_a_hit() -> None:
    activations = torch.tensor([0.0] * 18 + [3.0, 3.0])  # the 95th percentile is 3.0 itself
    threshold = hit_threshold(activations)
    assert threshold == 3.0
    assert hits(activations, threshold).tolist() == [False] * 18 + [True, True]


def test_a_neuron_without_activations_has_no_threshold() -> None:
    with pytest.raises(ValueError, match="no activations"):
        hit_threshold(torch.empty(0))


def test_the_top_images_are_those_the_encoder_rates_highest_ties_by_index() -> None:
    cosines = torch.tensor([0.1, 0.9, 0.5, 0.9, -0.2])
    assert top_images_for_concept(cosines, 3).tolist() == [1, 3, 2]
    assert top_images_for_concept(cosines, 12).tolist() == [1, 3, 2, 0, 4]


def test_concept_cosines_normalise_both_sides() -> None:
    images = torch.tensor([[2.0, 0.0], [0.0, 3.0], [1.0, 1.0]])
    cos = concept_cosines(images, torch.tensor([5.0, 0.0]))
    assert cos.tolist() == pytest.approx([1.0, 0.0, 2**-0.5])


def test_an_image_carries_a_concept_that_would_be_among_its_five_top_concepts() -> None:
    # Image 0's cosines over a vocabulary of 7 concepts; its 5th highest is 0.5.
    vocabulary_cos = torch.tensor([[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3], [0.2, 0.2, 0.2, 0.2, 0.2, 0.2, 0.2]])
    _, bars = image_row_summaries(vocabulary_cos, a=10.0)
    assert bars.tolist() == pytest.approx([0.5, 0.2])
    typed = torch.tensor([0.55, 0.1])  # above image 0's bar (would rank 5th), below image 1's
    assert carrying(typed, bars).tolist() == [True, False]
    assert carrying(torch.tensor([0.45, 0.2]), bars).tolist() == [False, True]  # the bar itself carries


def test_a_vocabulary_concept_at_the_bar_carries_despite_rounding() -> None:
    bars = torch.tensor([0.5])
    assert carrying(torch.tensor([0.5 - CARRY_TOLERANCE / 2]), bars).tolist() == [True]
    assert carrying(torch.tensor([0.5 - 10 * CARRY_TOLERANCE]), bars).tolist() == [False]


def test_carrying_refuses_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="stored bars"):
        carrying(torch.zeros(3), torch.zeros(4))


def test_row_summaries_keep_the_normalisers_and_read_the_rows_once() -> None:
    generator = torch.Generator().manual_seed(1)
    cos = torch.rand(700, 40, generator=generator) * 2 - 1  # more rows than one block
    normalisers, bars = image_row_summaries(cos, a=10.0, block=256)
    assert torch.equal(normalisers, image_log_normalisers(cos, 10.0))
    assert torch.equal(bars, torch.topk(cos, CARRY_RANK, dim=1).values[:, -1])


def test_a_vocabulary_smaller_than_the_rank_lets_every_concept_count() -> None:
    cos = torch.tensor([[0.3, 0.1, 0.2]])
    _, bars = image_row_summaries(cos, a=1.0)
    assert bars.tolist() == pytest.approx([0.1])
