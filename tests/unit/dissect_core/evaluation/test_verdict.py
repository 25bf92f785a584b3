"""The graded verdict: the top grade's four rules on constructed cases, and seeded noise never reaching it."""

from __future__ import annotations

import pytest
import torch

from dissect_core.analysis.coverage import Coverage
from dissect_core.evaluation.evaluate import evaluate_layer
from dissect_core.evaluation.verdict import DEFAULT_MIN_EXPLAINED_R, LabelVerdict, VerdictRules, grade_label
from dissect_core.results import NeuronEvaluation
from tests.unit.dissect_core.evaluation.conftest import make_probe, score_fn

COVERED = Coverage(40, "labels", True, False, "the probe set has 40 images labelled 'dog'")
UNCOVERED = Coverage(1, "encoder", False, False, "the probe set has 1 image of 'zebra' (by the encoder, of 332)")
BLIND = Coverage(0, "encoder", False, True, "the encoder does not recognise 'purple'")


def evaluation(*, r: float = 0.5, significant: bool = True, stability: float = 1.0) -> NeuronEvaluation:
    return NeuronEvaluation(
        explained_r=r, p_value=1e-6 if significant else 0.3, significant=significant, stability=stability,
        explanation=(), explanation_r=r,
    )  # fmt: skip


def test_a_planted_neuron_explained_by_its_label_gets_the_top_grade() -> None:
    verdict = grade_label(evaluation(r=0.6, stability=1.0), COVERED)
    assert verdict == LabelVerdict(
        "explains",
        (
            "r 0.60 explains 36.0% of the variance",
            "chosen by 5 of 5 folds",
            "the probe set has 40 images labelled 'dog'",
            "significant at 5% FDR",
        ),
    )
    assert verdict.reliable


def test_a_label_no_fold_chose_is_never_top_grade() -> None:
    verdict = grade_label(evaluation(r=0.6, stability=0.0), COVERED)
    assert verdict.verdict == "weak" and not verdict.reliable
    assert "chosen by 0 of 5 folds (the top grade needs 3 of 5)" in verdict.reasons


def test_three_of_five_folds_is_enough_and_two_is_not() -> None:
    assert grade_label(evaluation(stability=3 / 5), COVERED).verdict == "explains"
    assert grade_label(evaluation(stability=2 / 5), COVERED).verdict == "weak"


@pytest.mark.parametrize("coverage", [UNCOVERED, BLIND])
def test_an_uncovered_concept_is_never_top_grade(coverage: Coverage) -> None:
    verdict = grade_label(evaluation(r=0.9), coverage)
    assert verdict.verdict == "weak" and coverage.note in verdict.reasons


def test_a_small_effect_is_weak_however_significant() -> None:
    verdict = grade_label(evaluation(r=0.17), COVERED)
    assert verdict.verdict == "weak"
    assert (
        verdict.reasons[0] == f"r 0.17 explains 2.9% of the variance, below the floor r {DEFAULT_MIN_EXPLAINED_R:.2f}"
    )
    assert grade_label(evaluation(r=0.17), COVERED, VerdictRules(min_r=0.15)).verdict == "explains"


def test_without_significance_there_is_no_label_whatever_else_holds() -> None:
    verdict = grade_label(evaluation(r=0.9, significant=False), COVERED)
    assert verdict.verdict == "no label" and verdict.reasons[-1] == "not significant at 5% FDR (p 0.3)"


def test_an_undefined_r_is_said_so() -> None:
    verdict = grade_label(evaluation(r=float("nan"), significant=False), COVERED)
    assert verdict.verdict == "no label" and verdict.reasons[0].startswith("r is undefined")


@pytest.mark.slow
def test_no_unit_of_eight_layers_of_seeded_noise_reaches_the_top_grade() -> None:
    graded = []
    for seed in range(8):
        probe = make_probe(n_images=300, n_concepts=200, dim=128, seed=seed)
        generator = torch.Generator().manual_seed(200 + seed)
        activations = torch.relu(torch.randn(300, 60, generator=generator))
        labels = score_fn(probe.cosine, activations).argmax(dim=1)
        neurons, _ = evaluate_layer(
            score_fn, probe.cosine, probe.signals, activations, labels, probe.folds, probe.concepts
        )
        graded += [grade_label(neuron, COVERED).verdict for neuron in neurons]
    assert len(graded) == 480 and "explains" not in graded
