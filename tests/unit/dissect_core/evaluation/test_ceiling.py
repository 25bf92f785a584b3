"""The ceiling r: a perfect detector's out-of-fold r, by hand, and equal to a perfect detector neuron's own r."""

from __future__ import annotations

import math

import pytest
import torch

from dissect_core.evaluation.ceiling import detector_ceilings
from dissect_core.evaluation.correlation import pooled_within_fold_r
from dissect_core.evaluation.evaluate import cross_fit_labels
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.similarity.cosine import CosineSource, DenseCosine
from tests.unit.dissect_core.evaluation.conftest import make_probe


def _two_folds(column: list[float]) -> ConceptSignals:
    """Signals of one concept whose cosine is `column` on both of two identical folds of four images."""
    return ConceptSignals(DenseCosine(torch.tensor(column + column).unsqueeze(1)), "cosine")


FOLDS = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])


def test_a_ceiling_by_hand() -> None:
    # Each fold: cosine [2, 1, 0, 1], detector [1, 0, 0, 0]. Both folds' fits have the same slope, so the pooled
    # r is the within-fold r: centred [1, 0, -1, 0] and [.75, -.25, -.25, -.25], cov 1, norms sqrt(2), sqrt(.75).
    detector = torch.tensor([1.0, 0, 0, 0, 1, 0, 0, 0]).unsqueeze(1)
    ceiling = detector_ceilings(_two_folds([2.0, 1.0, 0.0, 1.0]), detector, torch.tensor([0]), FOLDS, 2)
    assert float(ceiling[0]) == pytest.approx(1 / math.sqrt(1.5), abs=1e-6)


def test_a_cosine_that_is_the_detector_has_ceiling_one_and_a_constant_detector_zero() -> None:
    signals = _two_folds([1.0, 0.0, 0.0, 0.0])
    detectors = torch.tensor([[1.0, 0, 0, 0, 1, 0, 0, 0], [0.0] * 8]).T
    ceilings = detector_ceilings(signals, detectors, torch.tensor([0, 0]), FOLDS, 2)
    assert ceilings.tolist() == pytest.approx([1.0, 0.0], abs=1e-6)


def _correlation_scores(cosine: CosineSource, activations: torch.Tensor) -> torch.Tensor:
    """Scores [K, C]: each neuron's r with each concept's cosine (a similarity that sees a 3-image detector)."""
    columns = cosine.columns(0, cosine.n_concepts).double()
    columns = (columns - columns.mean(dim=0)) / columns.std(dim=0)
    acts = activations.double() - activations.double().mean(dim=0)
    return (acts.T @ columns).float()


@pytest.mark.parametrize("n_shown", [3, 10, 60])
def test_a_neuron_that_is_a_perfect_detector_reaches_its_ceiling_exactly(n_shown: int) -> None:
    probe = make_probe(n_images=300, n_concepts=100, dim=64, seed=n_shown)
    concept = 7
    detector = torch.zeros(300, 1)
    detector[probe.columns[:, concept].topk(n_shown).indices] = 1.0
    ceiling = detector_ceilings(probe.signals, detector, torch.tensor([concept]), probe.folds, 5)
    labels, predictions = cross_fit_labels(_correlation_scores, probe.cosine, probe.signals, detector, probe.folds, 5)
    assert labels[:, 0].tolist() == [concept] * 5  # every fold chooses the concept, so r is the ceiling's
    r = pooled_within_fold_r(predictions, detector, probe.folds, 5)
    assert float(r[0]) == pytest.approx(float(ceiling[0]), abs=1e-6)
    assert 0 < float(ceiling[0]) < 1
