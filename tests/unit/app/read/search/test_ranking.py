"""Ranking a concept across layers: scores standardised within their layer, ranks within it, the coverage warning."""

from __future__ import annotations

import pytest
import torch

from app.read.search.ranking import coverage_warning, ranks_within, standardise
from dissect_core.analysis.coverage import Coverage


def test_standardised_scores_are_in_standard_deviations_of_their_layer() -> None:
    z = standardise(torch.tensor([1.0, 2.0, 3.0, 4.0]))
    assert float(z.mean()) == pytest.approx(0.0) and float(z.std(unbiased=False)) == pytest.approx(1.0)
    # The same units on a layer whose scores are ten times larger and shifted stand just as high.
    assert torch.allclose(standardise(torch.tensor([10.0, 20.0, 30.0, 40.0]) - 7), z)


def test_scores_that_do_not_vary_stand_at_zero() -> None:
    assert standardise(torch.tensor([2.5, 2.5, 2.5])).tolist() == [0.0, 0.0, 0.0]
    assert standardise(torch.tensor([4.0])).tolist() == [0.0]


def test_ranks_within_a_layer_put_the_best_first_and_ties_in_unit_order() -> None:
    assert ranks_within(torch.tensor([0.2, 0.9, 0.5, 0.9])).tolist() == [4, 1, 3, 2]


def test_the_warning_is_the_coverage_note_when_the_concept_cannot_be_judged() -> None:
    blind = Coverage(0, "encoder", False, True, "the encoder does not recognise 'purple'")
    few = Coverage(2, "encoder", False, False, "the probe set has 2 images of 'zebra': too few")
    enough = Coverage(12, "encoder", True, False, "the probe set has 12 images of 'dog'")
    assert coverage_warning(blind) == "The encoder does not recognise 'purple'."
    assert coverage_warning(few) == "The probe set has 2 images of 'zebra': too few."
    assert coverage_warning(enough) is None and coverage_warning(None) is None
