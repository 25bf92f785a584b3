"""Labels from a score matrix: the best concept, runners-up in order, ties to the lower concept, never a NaN."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.errors import DissectError
from dissect_core.labels import label_neurons

CONCEPTS = ["dog", "cat", "sky", "car"]


def test_best_concept_then_runners_up_with_ties_to_the_lower_concept() -> None:
    scores = torch.tensor([[1.0, 3.0, 3.0, 2.0], [0.0, 0.0, 0.0, 0.0]])
    first, dead = label_neurons(scores, CONCEPTS, n_runners_up=2)
    assert (first.unit, first.label, first.score) == (0, "cat", 3.0)
    assert [(runner.concept, runner.score) for runner in first.runners_up] == [("sky", 3.0), ("car", 2.0)]
    assert dead.label == "dog" and [runner.concept for runner in dead.runners_up] == ["cat", "sky"]


def test_a_nan_score_never_becomes_a_label_or_a_runner_up() -> None:
    scores = torch.tensor([[math.nan, 1.0, math.nan, -math.inf]])
    (label,) = label_neurons(scores, CONCEPTS)
    assert (label.label, label.score) == ("cat", 1.0)
    assert [(runner.concept, runner.score) for runner in label.runners_up] == [("car", -math.inf)]


def test_a_neuron_with_only_nan_scores_is_refused_by_number() -> None:
    with pytest.raises(DissectError, match="neuron 1 scored NaN on every concept"):
        label_neurons(torch.tensor([[1.0, 0.0, 0.0, 0.0], [math.nan] * 4]), CONCEPTS)


def test_scores_must_have_one_column_per_concept() -> None:
    with pytest.raises(ValueError, match=r"one column per concept \(4\)"):
        label_neurons(torch.zeros(2, 3), CONCEPTS)
    with pytest.raises(ValueError, match="no concepts"):
        label_neurons(torch.zeros(2, 0), [])
