"""Score a layer's labels on images they were not chosen from: cross-fitted simulation, significance, explanations.

The label a neuron shows is chosen on all probe images (the paper's protocol). Its quality is estimated by
cross-fitting: the probe set is split into folds by content; for each fold, the label and the multi-concept
explanation are chosen on the other folds only and used to simulate the neuron on this fold. The pooled
out-of-fold predictions are correlated with the real activations (`explained_r`, `explanation_r`), tested
against the null of no association, and the layer's p-values go through Benjamini–Hochberg. Explanation terms
are words of the vocabulary's language only, and keep only the terms that raise the out-of-fold r (`pruning`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch
from torch import Tensor

from dissect_core.data.vocabulary import term_concepts
from dissect_core.evaluation.candidates import top_correlated_concepts
from dissect_core.evaluation.correlation import pearson_columns, pooled_within_fold_r
from dissect_core.evaluation.linear_fits import LinearFits, single_concept_fits, sparse_nonnegative_fits
from dissect_core.evaluation.pruning import prune_terms
from dissect_core.evaluation.signals import ConceptSignals, restrict_rows
from dissect_core.evaluation.significance import benjamini_hochberg, correlation_null_sd, one_sided_p_values
from dissect_core.names import DEFAULT_FALSE_DISCOVERY_RATE, DEFAULT_N_FOLDS, DEFAULT_SIMULATION
from dissect_core.results import LayerEvaluation, NeuronEvaluation, WeightedConcept
from dissect_core.similarity.cosine import CosineSource

#: Neurons whose shuffled activations calibrate a layer's null; a smaller layer uses all its neurons, under up to
#: NULL_PERMUTATIONS permutations (a 32-neuron layer: 64 samples, the margin of one standard error covers it).
NULL_SAMPLES = 256
NULL_PERMUTATIONS = 2

#: Scores [K, C] of every (neuron, concept) pair from a cosine source and activations on the same images.
ScoreFn = Callable[[CosineSource, Tensor], Tensor]
#: A fold's labels [K] (concept indices) chosen on its training images (fold number, training image indices).
FoldLabelFn = Callable[[int, Tensor], Tensor]


@dataclass(frozen=True)
class EvaluationSettings:
    """How labels are evaluated: folds, the simulation, the false-discovery rate and the explanations' size."""

    n_folds: int = DEFAULT_N_FOLDS
    simulation: str = DEFAULT_SIMULATION
    false_discovery_rate: float = DEFAULT_FALSE_DISCOVERY_RATE
    max_terms: int = 5
    n_candidates: int = 32
    min_gain: float = 0.01


@dataclass(frozen=True)
class FoldChoices:
    """What each fold's training images chose: labels [F, K] and explanations, and the out-of-fold predictions."""

    labels: Tensor
    explanation_fits: list[LinearFits]
    label_predictions: Tensor  # [N, K], each image predicted by the fold that left it out
    explanation_predictions: Tensor  # [N, K]


def cross_fit(
    score_fn: ScoreFn,
    cosine: CosineSource,
    signals: ConceptSignals,
    activations: Tensor,
    folds: Tensor,
    candidates: Tensor,
    settings: EvaluationSettings,
) -> FoldChoices:
    """Return each fold's label and explanation, chosen on the other folds, and their out-of-fold predictions.

    `candidates` [F + 1, K, M] are each fold's explanation candidates ranked on its training images (see
    `top_correlated_concepts`).
    """
    fold_labels = labels_by_scores(score_fn, cosine, activations)
    return cross_fit_choices(fold_labels, signals, activations, folds, candidates, settings)


def cross_fit_choices(
    fold_labels: FoldLabelFn,
    signals: ConceptSignals,
    activations: Tensor,
    folds: Tensor,
    candidates: Tensor,
    settings: EvaluationSettings,
) -> FoldChoices:
    """Return `cross_fit`'s choices with each fold's labels from `fold_labels` (see `labels_by_scores`)."""
    labels, label_predictions = cross_fit_fold_labels(fold_labels, signals, activations, folds, settings.n_folds)
    explanation_predictions = torch.empty(activations.shape)
    explanation_fits = []
    for fold in range(settings.n_folds):
        train = (folds != fold).nonzero().squeeze(1)
        held = (folds == fold).nonzero().squeeze(1)
        fit = sparse_nonnegative_fits(
            signals, activations, train, candidates[fold], settings.max_terms, settings.min_gain
        )
        explanation_predictions[held] = fit.predict(signals, held)
        explanation_fits.append(fit)
    return FoldChoices(labels, explanation_fits, label_predictions, explanation_predictions)


def labels_by_scores(score_fn: ScoreFn, cosine: CosineSource, activations: Tensor) -> FoldLabelFn:
    """Return the fold labels that `score_fn` chooses on each fold's training images (their best concept)."""

    def fold_labels(fold: int, train: Tensor) -> Tensor:
        return score_fn(restrict_rows(cosine, train), activations[train]).argmax(dim=1)

    return fold_labels


def cross_fit_labels(
    score_fn: ScoreFn, cosine: CosineSource, signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int
) -> tuple[Tensor, Tensor]:
    """Return each fold's labels [F, K], chosen on the other folds, and the labels' out-of-fold predictions [N, K]."""
    fold_labels = labels_by_scores(score_fn, cosine, activations)
    return cross_fit_fold_labels(fold_labels, signals, activations, folds, n_folds)


def cross_fit_fold_labels(
    fold_labels: FoldLabelFn, signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int
) -> tuple[Tensor, Tensor]:
    """Return `cross_fit_labels`' labels [F, K] and out-of-fold predictions [N, K], the labels from `fold_labels`."""
    labels = torch.empty((n_folds, activations.shape[1]), dtype=torch.long)
    predictions = torch.empty(activations.shape)
    for fold in range(n_folds):
        train = (folds != fold).nonzero().squeeze(1)
        held = (folds == fold).nonzero().squeeze(1)
        labels[fold] = fold_labels(fold, train)
        predictions[held] = single_concept_fits(signals, activations, train, labels[fold]).predict(signals, held)
    return labels, predictions


def null_draws(n_images: int, n_neurons: int, n_samples: int = NULL_SAMPLES) -> list[tuple[Tensor, Tensor]]:
    """Return the (image order [N], neuron subset) of each permutation `permutation_null_sd` draws (fixed seed)."""
    generator = torch.Generator().manual_seed(0)
    draws: list[tuple[Tensor, Tensor]] = []
    drawn = 0
    for _ in range(NULL_PERMUTATIONS):
        if drawn >= n_samples:
            break
        subset = torch.randperm(n_neurons, generator=generator)[: n_samples - drawn]
        draws.append((torch.randperm(n_images, generator=generator), subset))
        drawn += len(subset)
    return draws


def permutation_null_sd(
    score_fn: ScoreFn,
    cosine: CosineSource,
    signals: ConceptSignals,
    activations: Tensor,
    folds: Tensor,
    n_folds: int,
    n_samples: int = NULL_SAMPLES,
) -> float:
    """Return the sd of the out-of-fold label r when the activations are shuffled across images.

    A fold's label is chosen on the other folds' activations, so the folds' scores are not independent and
    r spreads wider under the null than 1/sqrt(n) (about 10% in our tests). The labels' cross-fitting is
    rerun on activations whose images were permuted (the same permutation for every neuron), for up to
    `n_samples` neurons under at most NULL_PERMUTATIONS permutations, drawn with a fixed seed (`null_draws`); the
    result is never below the theoretical sd, and one standard error is added so a small sample does not
    understate it.
    """
    n_images, n_neurons = activations.shape
    shuffled = [activations[order][:, subset] for order, subset in null_draws(n_images, n_neurons, n_samples)]
    return null_sd_of(score_fn, cosine, signals, shuffled, folds, n_folds)


def null_sd_of(
    score_fn: ScoreFn,
    cosine: CosineSource,
    signals: ConceptSignals,
    shuffled: Sequence[Tensor],
    folds: Tensor,
    n_folds: int,
) -> float:
    """Return `permutation_null_sd` from the shuffled activations of its draws ([N, subset] each)."""
    theory = correlation_null_sd(len(folds) - n_folds + 1)
    null_r: list[Tensor] = []
    for sample in shuffled:
        _, predictions = cross_fit_labels(score_fn, cosine, signals, sample, folds, n_folds)
        r = pooled_within_fold_r(predictions, sample, folds, n_folds).double()
        null_r.append(torch.atanh(r.clamp(-0.999, 0.999)))
    pooled = torch.cat(null_r)
    empirical = float(torch.sqrt((pooled**2).mean())) * (1 + 1 / math.sqrt(2 * len(pooled)))
    return max(theory, empirical)


@dataclass(frozen=True)
class UnitEvaluations:
    """What a block of neurons' out-of-fold evaluation found, per neuron: the label's and the explanation's r, the
    label's stability over folds, the pruned explanation's terms and the ground-truth r (None off the classes)."""

    explained_r: Tensor  # [K] float32
    explanation_r: Tensor  # [K] float32
    stability: Tensor  # [K] float64
    explanations: list[tuple[WeightedConcept, ...]]
    ground_truth_r: list[float | None]


def evaluate_layer(
    score_fn: ScoreFn,
    cosine: CosineSource,
    signals: ConceptSignals,
    activations: Tensor,
    label_index: Tensor,
    folds: Tensor,
    concepts: Sequence[str],
    settings: EvaluationSettings | None = None,
    image_labels: Sequence[str | None] | None = None,
) -> tuple[list[NeuronEvaluation], LayerEvaluation]:
    """Return each neuron's out-of-fold evaluation of its label `label_index` [K] and explanation, and a summary.

    The stages a distributed run spreads over blocks of neurons, in one block: `evaluate_units`, the null's
    `permutation_null_sd`, then `layer_evaluations` across the layer.
    """
    settings = settings or EvaluationSettings()
    fold_labels = labels_by_scores(score_fn, cosine, activations)
    units = evaluate_units(fold_labels, signals, activations, label_index, folds, concepts, settings, image_labels)
    null_sd = permutation_null_sd(score_fn, cosine, signals, activations, folds, settings.n_folds)
    return layer_evaluations(units, null_sd, settings, signals.simulation, activations.shape[0])


def evaluate_units(
    fold_labels: FoldLabelFn,
    signals: ConceptSignals,
    activations: Tensor,
    label_index: Tensor,
    folds: Tensor,
    concepts: Sequence[str],
    settings: EvaluationSettings,
    image_labels: Sequence[str | None] | None = None,
) -> UnitEvaluations:
    """Return the per-neuron part of `evaluate_layer` for the neurons (columns) of `activations`: each neuron's
    result depends on its own column only, so blocks of neurons evaluated apart give the layer's."""
    n_images = activations.shape[0]
    terms = term_concepts(concepts)
    candidates = top_correlated_concepts(
        signals,
        activations,
        folds,
        settings.n_folds,
        settings.n_candidates,
        allowed=None if terms is None else torch.tensor(terms, dtype=torch.bool),
    )
    choices = cross_fit_choices(fold_labels, signals, activations, folds, candidates, settings)
    explained_r = pooled_within_fold_r(choices.label_predictions, activations, folds, settings.n_folds)
    explanation_r = pooled_within_fold_r(choices.explanation_predictions, activations, folds, settings.n_folds)
    stability = (choices.labels == label_index.unsqueeze(0)).double().mean(dim=0)
    every_image = torch.arange(n_images)
    explanation = prune_terms(
        signals,
        activations,
        folds,
        settings.n_folds,
        sparse_nonnegative_fits(
            signals, activations, every_image, candidates[settings.n_folds], settings.max_terms, settings.min_gain
        ),
    )
    return UnitEvaluations(
        explained_r=explained_r,
        explanation_r=explanation_r,
        stability=stability,
        explanations=[_terms(explanation, unit, concepts) for unit in range(activations.shape[1])],
        ground_truth_r=ground_truth_correlations(
            activations, [concepts[i] for i in label_index.tolist()], image_labels
        ),
    )


def joined_units(blocks: Sequence[UnitEvaluations]) -> UnitEvaluations:
    """Return the evaluations of consecutive blocks of neurons as one layer's."""
    return UnitEvaluations(
        explained_r=torch.cat([block.explained_r for block in blocks]),
        explanation_r=torch.cat([block.explanation_r for block in blocks]),
        stability=torch.cat([block.stability for block in blocks]),
        explanations=[terms for block in blocks for terms in block.explanations],
        ground_truth_r=[r for block in blocks for r in block.ground_truth_r],
    )


def layer_evaluations(
    units: UnitEvaluations, null_sd: float, settings: EvaluationSettings, simulation: str, n_images: int
) -> tuple[list[NeuronEvaluation], LayerEvaluation]:
    """Return each neuron's evaluation and the layer's summary: p-values against the null, Benjamini–Hochberg
    across the whole layer."""
    explained_r = units.explained_r
    p_values = one_sided_p_values(explained_r, null_sd=null_sd)
    significant = benjamini_hochberg(p_values, settings.false_discovery_rate) & (explained_r > 0)
    neurons = [
        NeuronEvaluation(
            explained_r=float(explained_r[unit]),
            p_value=float(p_values[unit]),
            significant=bool(significant[unit]),
            stability=float(units.stability[unit]),
            explanation=units.explanations[unit],
            explanation_r=float(units.explanation_r[unit]),
            ground_truth_r=units.ground_truth_r[unit],
        )
        for unit in range(len(explained_r))
    ]
    significant_r = explained_r[significant]
    summary = LayerEvaluation(
        n_folds=settings.n_folds,
        simulation=simulation,
        false_discovery_rate=settings.false_discovery_rate,
        n_images=n_images,
        null_sd=null_sd,
        reliable_min_r=float(significant_r.min()) if len(significant_r) else None,
        share_reliable=float(significant.double().mean()) if len(significant) else 0.0,
    )
    return neurons, summary


def _terms(fits: LinearFits, unit: int, concepts: Sequence[str]) -> tuple[WeightedConcept, ...]:
    """Return one neuron's explanation as (concept, weight) terms, most important first."""
    return tuple(
        WeightedConcept(concepts[concept], float(weight))
        for concept, weight in zip(fits.concepts[unit].tolist(), fits.weights[unit].tolist(), strict=True)
        if concept >= 0
    )


def normalise_class_name(name: str) -> str:
    """Return a class name or concept in the form they are compared in: lower case, `_` as spaces, trimmed."""
    return " ".join(name.replace("_", " ").lower().split())


def ground_truth_correlations(
    activations: Tensor, labels: Sequence[str], image_labels: Sequence[str | None] | None
) -> list[float | None]:
    """Return, per neuron, r between its activations and the presence of its label's class (None off the classes).

    This needs no image–text model: it is the evaluation to trust when the probe set has class labels and
    the concepts are its class names.
    """
    if not image_labels or all(label is None for label in image_labels):
        return [None] * len(labels)
    class_ids: dict[str, int] = {}
    image_class = torch.tensor(
        [class_ids.setdefault(normalise_class_name(label), len(class_ids)) if label else -1 for label in image_labels]
    )
    out: list[float | None] = []
    for unit, label in enumerate(labels):
        class_id = class_ids.get(normalise_class_name(label))
        if class_id is None:
            out.append(None)
            continue
        presence = (image_class == class_id).double().unsqueeze(1)
        out.append(float(pearson_columns(presence, activations[:, unit : unit + 1])[0]))
    return out
