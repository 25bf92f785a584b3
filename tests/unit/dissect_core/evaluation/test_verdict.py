"""The graded verdict: the top grade's four rules on constructed cases, the r floor relative to the concept's ceiling
by hand, perfect detectors of any sparsity reaching the top grade and seeded noise never reaching it."""

from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from dissect_core.analysis.coverage import Coverage
from dissect_core.evaluation.evaluate import evaluate_layer
from dissect_core.evaluation.grading import label_coverages
from dissect_core.evaluation.verdict import (
    DEFAULT_MIN_CEILING_SHARE,
    DEFAULT_MIN_EXPLAINED_R,
    LabelVerdict,
    VerdictRules,
    grade_label,
    weak_causes,
)
from dissect_core.results import NeuronEvaluation
from dissect_core.similarity.row_summaries import image_row_summaries
from tests.unit.dissect_core.evaluation.conftest import Probe, make_probe, score_fn

COVERED = Coverage(40, "labels", True, False, "the probe set has 40 images labelled 'dog'")
UNCOVERED = Coverage(1, "encoder", False, False, "the probe set has 1 image of 'zebra' (by the encoder, of 332)")
BLIND = Coverage(0, "encoder", False, True, "the encoder does not recognise 'purple'")


def evaluation(*, r: float = 0.6, significant: bool = True, stability: float = 1.0) -> NeuronEvaluation:
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
    floor = max(DEFAULT_MIN_EXPLAINED_R, DEFAULT_MIN_CEILING_SHARE)  # no ceiling known: a perfect detector's r is 1
    assert verdict.reasons[0] == (
        f"r 0.17 explains 2.9% of the variance, below the floor r {floor:.2f} (no perfect detector's r is known)"
    )
    assert grade_label(evaluation(r=0.17), COVERED, VerdictRules(min_r=0.15, min_ceiling_share=0.1)).reliable


def test_the_floor_is_a_share_of_the_ceiling_and_never_below_the_absolute_floor() -> None:
    rules = VerdictRules(min_r=0.1, min_ceiling_share=0.5)
    assert rules.floor(0.6) == pytest.approx(0.3)
    assert rules.floor(0.15) == pytest.approx(0.1)  # half of 0.15 is below the absolute floor
    assert rules.floor(None) == pytest.approx(0.5)


def test_a_sparse_concepts_label_reaches_the_top_grade_against_its_low_ceiling() -> None:
    rules = VerdictRules(min_r=0.1, min_ceiling_share=0.5)
    monarch = replace(COVERED, ceiling_r=0.25)
    verdict = grade_label(evaluation(r=0.18), monarch, rules, concept="monarch")
    assert verdict.verdict == "explains"
    assert verdict.reasons[0] == (
        "r 0.18 (3.2% of the variance) is 72% of the 0.25 a perfect detector of 'monarch' reaches on these images"
    )
    # The same r is weak for a concept whose perfect detector reaches 0.6 here.
    dog = grade_label(evaluation(r=0.18), replace(COVERED, ceiling_r=0.6), rules, concept="dog")
    assert dog.verdict == "weak"
    assert dog.reasons[0].endswith(
        "is 30% of the 0.60 a perfect detector of 'dog' reaches on these images, below the 50% the top grade needs"
    )
    tiny = grade_label(evaluation(r=0.08), replace(COVERED, ceiling_r=0.1), rules, concept="x")
    assert tiny.verdict == "weak" and tiny.reasons[0].endswith("below the floor r 0.10")


def test_a_concept_whose_perfect_detector_scores_nothing_falls_back_to_the_absolute_floor() -> None:
    rules = VerdictRules(min_r=0.1, min_ceiling_share=0.5)
    verdict = grade_label(evaluation(r=0.12), replace(COVERED, ceiling_r=0.0), rules, concept="x")
    assert verdict.verdict == "explains"
    assert verdict.reasons[0] == (
        "r 0.12 explains 1.4% of the variance; a perfect detector of 'x' reaches r 0.00 on these images"
    )


def test_without_significance_there_is_no_label_whatever_else_holds() -> None:
    verdict = grade_label(evaluation(r=0.9, significant=False), COVERED)
    assert verdict.verdict == "no label" and verdict.reasons[-1] == "not significant at 5% FDR (p 0.3)"


def test_an_undefined_r_is_said_so() -> None:
    verdict = grade_label(evaluation(r=float("nan"), significant=False), COVERED)
    assert verdict.verdict == "no label" and verdict.reasons[0].startswith("r is undefined")


def _graded(probe: Probe, activations: torch.Tensor, image_labels: list[str | None] | None) -> list[LabelVerdict]:
    """Grade a layer as a run does: labels, out-of-fold evaluation, coverages with ceilings; coverage waived."""
    labels = score_fn(probe.cosine, activations).argmax(dim=1)
    neurons, _ = evaluate_layer(score_fn, probe.cosine, probe.signals, activations, labels, probe.folds, probe.concepts)
    names = [probe.concepts[label] for label in labels.tolist()]
    _, carry_cosines = image_row_summaries(probe.cosine, probe.signals.a)
    coverages = label_coverages(
        probe.cosine, carry_cosines, None, probe.concepts, set(names), image_labels,
        signals=probe.signals, folds=probe.folds,
    )  # fmt: skip
    return [
        grade_label(neuron, replace(coverages[name], judgeable=True), concept=name)
        for neuron, name in zip(neurons, names, strict=True)
    ]


@pytest.mark.slow
def test_a_perfect_detector_reaches_the_top_grade_whatever_its_sparsity() -> None:
    probe = make_probe(n_images=300, n_concepts=100, dim=64, seed=3)
    image_labels: list[str | None] = [None] * 300
    activations = torch.zeros(300, 3)
    for unit, (concept, n_shown) in enumerate([(7, 3), (20, 12), (40, 60)]):
        shown = probe.columns[:, concept].topk(n_shown).indices
        activations[shown, unit] = 1.0
        for image in shown.tolist():
            image_labels[image] = probe.concepts[concept]
    verdicts = _graded(probe, activations, image_labels)
    assert [verdict.verdict for verdict in verdicts] == ["explains"] * 3, [v.reasons for v in verdicts]
    assert all("is 100% of the" in verdict.reasons[0] for verdict in verdicts)


@pytest.mark.slow
def test_no_unit_of_eight_layers_of_seeded_noise_reaches_the_top_grade() -> None:
    graded = []
    for seed in range(8):
        probe = make_probe(n_images=300, n_concepts=200, dim=128, seed=seed)
        generator = torch.Generator().manual_seed(200 + seed)
        activations = torch.relu(torch.randn(300, 60, generator=generator))
        graded += [verdict.verdict for verdict in _graded(probe, activations, None)]
    assert len(graded) == 480 and "explains" not in graded


def test_a_weak_labels_causes_come_from_its_stored_stability_and_coverage() -> None:
    assert weak_causes(0.4, True) == {"unstable"}
    assert weak_causes(0.6, False) == {"uncovered"}
    assert weak_causes(3 / 5, True) == {"floor only"}  # 3 of 5 in floating point is stable
    assert weak_causes(None, None) == {"unstable", "uncovered"}  # a label nothing was stored for misses both
    assert weak_causes(float("nan"), True) == {"unstable"}
