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
    labels, label_predictions = cross_fit_labels(score_fn, cosine, signals, activations, folds, settings.n_folds)
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


def cross_fit_labels(
    score_fn: ScoreFn, cosine: CosineSource, signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int
) -> tuple[Tensor, Tensor]:
    """Return each fold's labels [F, K], chosen on the other folds, and the labels' out-of-fold predictions [N, K]."""
    labels = torch.empty((n_folds, activations.shape[1]), dtype=torch.long)
    predictions = torch.empty(activations.shape)
    for fold in range(n_folds):
        train = (folds != fold).nonzero().squeeze(1)
        held = (folds == fold).nonzero().squeeze(1)
        labels[fold] = score_fn(restrict_rows(cosine, train), activations[train]).argmax(dim=1)
        predictions[held] = single_concept_fits(signals, activations, train, labels[fold]).predict(signals, held)
    return labels, predictions


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
    `n_samples` neurons under at most NULL_PERMUTATIONS permutations, drawn with a fixed seed; the result is
    never below the theoretical sd, and one standard error is added so a small sample does not understate it.
    """
    n_images, n_neurons = activations.shape
    generator = torch.Generator().manual_seed(0)
    theory = correlation_null_sd(n_images - n_folds + 1)
    null_r: list[Tensor] = []
    drawn = 0
    for _ in range(NULL_PERMUTATIONS):
        if drawn >= n_samples:
            break
        subset = torch.randperm(n_neurons, generator=generator)[: n_samples - drawn]
        shuffled = activations[torch.randperm(n_images, generator=generator)][:, subset]
        _, predictions = cross_fit_labels(score_fn, cosine, signals, shuffled, folds, n_folds)
        r = pooled_within_fold_r(predictions, shuffled, folds, n_folds).double()
        null_r.append(torch.atanh(r.clamp(-0.999, 0.999)))
        drawn += len(subset)
    pooled = torch.cat(null_r)
    empirical = float(torch.sqrt((pooled**2).mean())) * (1 + 1 / math.sqrt(2 * len(pooled)))
    return max(theory, empirical)


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
    """Return each neuron's out-of-fold evaluation of its label `label_index` [K] and explanation, and a summary."""
    settings = settings or EvaluationSettings()
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
    choices = cross_fit(score_fn, cosine, signals, activations, folds, candidates, settings)
    explained_r = pooled_within_fold_r(choices.label_predictions, activations, folds, settings.n_folds)
    explanation_r = pooled_within_fold_r(choices.explanation_predictions, activations, folds, settings.n_folds)
    null_sd = permutation_null_sd(score_fn, cosine, signals, activations, folds, settings.n_folds)
    p_values = one_sided_p_values(explained_r, null_sd=null_sd)
    significant = benjamini_hochberg(p_values, settings.false_discovery_rate) & (explained_r > 0)
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
    ground_truth = ground_truth_correlations(activations, [concepts[i] for i in label_index.tolist()], image_labels)
    neurons = [
        NeuronEvaluation(
            explained_r=float(explained_r[unit]),
            p_value=float(p_values[unit]),
            significant=bool(significant[unit]),
            stability=float(stability[unit]),
            explanation=_terms(explanation, unit, concepts),
            explanation_r=float(explanation_r[unit]),
            ground_truth_r=ground_truth[unit],
        )
        for unit in range(activations.shape[1])
    ]
    significant_r = explained_r[significant]
    summary = LayerEvaluation(
        n_folds=settings.n_folds,
        simulation=signals.simulation,
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
