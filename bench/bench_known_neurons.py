"""Known-neuron check (NeuronEval, Trustworthy-ML-Lab/Neuron_Eval `known_neuron_auprc_eval.ipynb`): can a score
tell a neuron's true concept from the others?

EfficientNet-Lite0's `classifier` (unit k = ImageNet class k, its true concept the class's name) over the 1,300
labelled ImageNet validation images, dissected with the offline ConSE encoder and the 1,000 class names as the
concepts (`imagenet`), 5 folds. Only the 725 units whose class has probe images are scored.

1. NeuronEval's protocol: a [units x concepts] score matrix, positive = (unit k, class k's name), negative = every
   other (unit, concept) pair (725 positives, 724,275 negatives); the AUPRC of the flattened matrix (average
   precision over distinct thresholds, so tied scores count as one threshold). Scores of a pair (k, c):
   - soft-WPMI: the run's similarity score of concept c for unit k (the score labels are chosen by);
   - explained_r: the out-of-fold r of concept c as unit k's label (the evaluation's single-concept simulation,
     fitted on each fold's training images, correlated within folds);
   - grade: the verdict of concept c as unit k's label (explains 2, weak 1, no label 0), from that r, its
     p-value against the layer's permutation null, Benjamini–Hochberg across all pairs, the share of folds whose
     training images chose c for unit k, and c's coverage (from the labels: c names a class).
2. The labels' check: each unit's shown label, positive when it is the unit's class; the AUPRC of its
   explained_r, its soft-WPMI score and its grade at telling right labels from wrong.
NeuronEval's figures (CUB concept-bottleneck neurons, ground-truth concept labels: cosine 0.899, correlation
0.889, WPMI 0.732) are another model, data set and concept source; they are quoted for scale, not comparable.

Run: .venv/bin/python -m bench.bench_known_neurons [--cache-dir /tmp/neuron-atlas-bench-24]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from torch import Tensor

from bench.imagenet_probe import (
    DEFAULT_CACHE,
    ENCODER,
    IMAGENET_DIR,
    concept_embeddings,
    image_classes_by_file,
    image_labels_of,
    named_labels_file,
    require_shared,
)
from dissect_core.analysis.coverage import vocabulary_spreads
from dissect_core.config import DissectConfig
from dissect_core.evaluation.correlation import pooled_within_fold_r
from dissect_core.evaluation.evaluate import cross_fit_labels
from dissect_core.evaluation.folds import fold_of_images
from dissect_core.evaluation.grading import label_coverages
from dissect_core.evaluation.linear_fits import single_concept_fits
from dissect_core.evaluation.signals import ConceptSignals
from dissect_core.evaluation.significance import benjamini_hochberg, one_sided_p_values
from dissect_core.evaluation.verdict import VERDICTS, grade_label
from dissect_core.pipeline import run_dissection
from dissect_core.results import DissectionResult, NeuronEvaluation
from dissect_core.similarity.cosine import CosineSource, DenseCosine, FactoredCosine
from dissect_core.similarity.functions import get_similarity

#: A grade as a score: the top grade highest.
GRADE_SCORE = {verdict: float(len(VERDICTS) - 1 - rank) for rank, verdict in enumerate(VERDICTS)}


def average_precision(scores: Tensor, positive: Tensor) -> float:
    """Return the AUPRC (average precision) of `scores` at ranking `positive` first, tied scores one threshold."""
    order = torch.argsort(scores.double().flatten(), descending=True)
    ranked = scores.double().flatten()[order]
    hits = positive.flatten()[order].double()
    true_positives = torch.cumsum(hits, 0)
    # the last position of each run of equal scores is a threshold
    last = torch.ones(len(ranked), dtype=torch.bool)
    last[:-1] = ranked[1:] != ranked[:-1]
    tp = true_positives[last]
    precision = tp / (torch.arange(len(ranked), dtype=torch.float64)[last] + 1)
    recall_gain = torch.diff(tp, prepend=torch.zeros(1, dtype=torch.float64)) / hits.sum()
    return float((recall_gain * precision).sum())


def out_of_fold_r(signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int) -> Tensor:
    """Return [K, C]: the out-of-fold r of every concept as every unit's label (the evaluation's simulation)."""
    n_units = activations.shape[1]
    r = torch.empty(n_units, signals.n_concepts)
    members = [((folds != f).nonzero().squeeze(1), (folds == f).nonzero().squeeze(1)) for f in range(n_folds)]
    predictions = torch.empty(activations.shape)
    for concept in range(signals.n_concepts):
        labels = torch.full((n_units,), concept, dtype=torch.long)
        for train, held in members:
            predictions[held] = single_concept_fits(signals, activations, train, labels).predict(signals, held)
        r[:, concept] = pooled_within_fold_r(predictions, activations, folds, n_folds)
    return r


def pair_grades(
    result: DissectionResult,
    cosine: CosineSource,
    explained_r: Tensor,
    stability: Tensor,
    image_labels: list[str | None],
    signals: ConceptSignals,
    folds: Tensor,
) -> Tensor:
    """Return [K, C] grade scores of every concept as every unit's label (BH across all pairs)."""
    layer = result.layer("classifier")
    assert layer.evaluation is not None
    p_values = one_sided_p_values(explained_r.flatten(), null_sd=layer.evaluation.null_sd)
    significant = benjamini_hochberg(p_values, layer.evaluation.false_discovery_rate) & (explained_r.flatten() > 0)
    significant = significant.view_as(explained_r)
    carry_cosines = result.carry_cosines
    assert carry_cosines is not None, "a fresh run keeps each image's carry bar"
    reference = vocabulary_spreads(cosine, carry_cosines)
    by_concept = label_coverages(
        cosine,
        carry_cosines,
        reference,
        result.concepts,
        set(result.concepts),
        image_labels,
        signals=signals,
        folds=folds,
    )
    coverages = [by_concept[concept] for concept in result.concepts]
    n_folds = result.record.config.n_folds
    grades = torch.empty(explained_r.shape)
    for row in range(explained_r.shape[0]):
        for concept, coverage in enumerate(coverages):
            evaluation = NeuronEvaluation(
                explained_r=float(explained_r[row, concept]),
                p_value=float(p_values[row * explained_r.shape[1] + concept]),
                significant=bool(significant[row, concept]),
                stability=float(stability[row, concept]),
                explanation=(),
                explanation_r=float("nan"),
            )
            verdict = grade_label(evaluation, coverage, n_folds=n_folds, concept=result.concepts[concept])
            grades[row, concept] = GRADE_SCORE[verdict.verdict]
    return grades


def main() -> None:
    """Dissect the classifier, build the score matrices and print the AUPRC table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cache-dir", type=Path, default=DEFAULT_CACHE)
    args = parser.parse_args()
    require_shared(IMAGENET_DIR)
    with tempfile.TemporaryDirectory() as folder:
        config = DissectConfig(
            model="efficientnet_lite0", layers=("classifier",), probe=str(IMAGENET_DIR / "images"),
            labels_file=str(named_labels_file(Path(folder))), concepts="imagenet", encoder=ENCODER,
        )  # fmt: skip
        config.validate()
        result = run_dissection(config, cache_dir=args.cache_dir)
    start = time.perf_counter()
    by_file = image_classes_by_file()
    image_classes = torch.tensor([by_file[Path(path).name] for path in result.image_paths])
    units = torch.unique(image_classes)
    layer = result.layer("classifier")
    activations = layer.activations[:, units]
    concepts, text_embeddings = concept_embeddings("imagenet", args.cache_dir)
    assert concepts == result.concepts, "the cached concept set must be the run's"
    cosine: CosineSource = DenseCosine(FactoredCosine(result.image_embeddings, text_embeddings).dense())
    params = result.record.resolved.similarity_params
    similarity = get_similarity(result.record.config.similarity)
    n_folds = result.record.config.n_folds
    image_labels = image_labels_of(result.image_paths)
    folds = fold_of_images(result.image_ids, n_folds, image_labels)
    a = result.record.resolved.concept_search["a"]
    signals = ConceptSignals(cosine, result.record.config.simulation, a, result.log_normalisers)
    positive = torch.zeros(len(units), len(result.concepts), dtype=torch.bool)
    positive[torch.arange(len(units)), units] = True

    soft_wpmi_scores = similarity(cosine, activations, **params)
    explained_r = out_of_fold_r(signals, activations, folds, n_folds)
    fold_labels, _ = cross_fit_labels(
        lambda subset, acts: similarity(subset, acts, **params), cosine, signals, activations, folds, n_folds
    )
    stability = torch.zeros(len(units), len(result.concepts))
    for fold_label in fold_labels:
        stability[torch.arange(len(units)), fold_label] += 1 / n_folds
    grades = pair_grades(result, cosine, explained_r, stability, image_labels, signals, folds)
    print(f"EfficientNet-Lite0 classifier, {len(result.image_ids)} ImageNet val images, {len(units)} units with "
          f"probe images, {len(result.concepts)} concepts (class names), encoder {ENCODER}, {n_folds} folds "
          f"({time.perf_counter() - start:.0f} s for the matrices)")  # fmt: skip
    print("\n1. NeuronEval's protocol: AUPRC of (unit, its class) against (unit, any other concept)")
    print(f"   chance (share of positives) {positive.double().mean():.4f}")
    for name, scores in (("soft-WPMI score", soft_wpmi_scores), ("explained_r", explained_r), ("grade", grades)):
        print(f"   {name:<18}{average_precision(scores, positive):.3f}")
    top = grades == GRADE_SCORE[VERDICTS[0]]
    print(f"   pairs at the top grade: {int(top.sum())}, of them the true class {int((top & positive).sum())}")

    neurons = [layer.neurons[k] for k in units.tolist()]
    correct = torch.tensor([n.label == result.concepts[k] for n, k in zip(neurons, units.tolist(), strict=True)])
    print(f"\n2. the shown labels: {int(correct.sum())} of {len(neurons)} are the unit's class "
          f"(chance {correct.double().mean():.3f})")  # fmt: skip
    label_scores = {
        "soft-WPMI score": torch.tensor([n.score for n in neurons]),
        "explained_r": torch.tensor([n.evaluation.explained_r if n.evaluation else float("nan") for n in neurons]),
        "grade": torch.tensor([GRADE_SCORE[n.verdict.verdict] if n.verdict else 0.0 for n in neurons]),
    }
    for name, scores in label_scores.items():
        print(f"   {name:<18}{average_precision(scores, correct):.3f}")
    grades_shown = [n.verdict.verdict if n.verdict else "none" for n in neurons]
    for verdict in VERDICTS:
        members = [i for i, g in enumerate(grades_shown) if g == verdict]
        right = sum(bool(correct[i]) for i in members)
        print(f"   grade {verdict!r}: {len(members)} labels, {right} right")


if __name__ == "__main__":
    torch.set_grad_enabled(False)
    main()
