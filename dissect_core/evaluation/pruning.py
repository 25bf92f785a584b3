"""Explanation terms that earn their place: a term stays only if it raises the explanation's out-of-fold r.

The greedy fit (`sparse_nonnegative_fits`) admits a term for the variance it explains on the images it was fitted
on. Here each neuron's terms are refitted (non-negative least squares on the fixed set of concepts) on every fold's
training images and scored on its held-out images, with and without each term, least important first; a term whose
removal leaves the pooled out-of-fold r as high or higher goes. The first term goes too where another does better
alone, but an explanation always keeps one.
"""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.evaluation.correlation import pooled_within_fold_r
from dissect_core.evaluation.linear_fits import LinearFits, nonnegative_least_squares
from dissect_core.evaluation.signals import ConceptSignals

_CHUNK_BYTES = 256 << 20


def support_fits(
    signals: ConceptSignals, activations: Tensor, images: Tensor, concepts: Tensor, used: Tensor
) -> LinearFits:
    """Return each neuron's non-negative least-squares fit on `images` of its used concepts [K, T] (mask `used`)."""
    n_neurons, n_terms = concepts.shape
    n = len(images)
    acts = activations[images].double()
    weights = torch.zeros((n_neurons, n_terms), dtype=torch.float64)
    means = torch.zeros((n_neurons, n_terms), dtype=torch.float64)
    chunk = max(1, _CHUNK_BYTES // (8 * max(1, n) * max(1, n_terms)))
    for start in range(0, n_neurons, chunk):
        stop = min(start + chunk, n_neurons)
        block = concepts[start:stop].clamp(min=0)
        x = signals.concept_rows(block.reshape(-1), images).double().view(stop - start, n_terms, n)
        x_means = x.mean(dim=2)
        x -= x_means.unsqueeze(2)
        y = acts[:, start:stop].T
        y = y - y.mean(dim=1, keepdim=True)
        gram = torch.bmm(x, x.transpose(1, 2))
        cross = torch.bmm(x, y.unsqueeze(2)).squeeze(2)
        weights[start:stop] = nonnegative_least_squares(gram, cross, used[start:stop])
        means[start:stop] = x_means
    kept = used & (weights > 0)
    return LinearFits(
        concepts=torch.where(kept, concepts, -1),
        weights=torch.where(kept, weights, 0.0),
        signal_means=torch.where(kept, means, 0.0),
        intercepts=acts.mean(dim=0),
    )


def out_of_fold_r(
    signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int, concepts: Tensor, used: Tensor
) -> Tensor:
    """Return float32 [K]: the pooled out-of-fold r of each neuron's fixed set of concepts, refitted per fold."""
    predictions = torch.empty(activations.shape)
    for fold in range(n_folds):
        train = (folds != fold).nonzero().squeeze(1)
        held = (folds == fold).nonzero().squeeze(1)
        predictions[held] = support_fits(signals, activations, train, concepts, used).predict(signals, held)
    return pooled_within_fold_r(predictions, activations, folds, n_folds)


def prune_terms(
    signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int, fits: LinearFits
) -> LinearFits:
    """Return `fits` without the terms that do not raise the out-of-fold r, refitted on every image."""
    concepts = fits.concepts
    used = concepts >= 0
    for position in reversed(range(concepts.shape[1])):
        others = used.clone()
        others[:, position] = False
        candidates = used[:, position] & others.any(dim=1)
        if not bool(candidates.any()):
            continue
        rows = candidates.nonzero().squeeze(1)
        with_term = out_of_fold_r(signals, activations[:, rows], folds, n_folds, concepts[rows], used[rows])
        without = out_of_fold_r(signals, activations[:, rows], folds, n_folds, concepts[rows], others[rows])
        used[rows[without >= with_term], position] = False
    every_image = torch.arange(activations.shape[0])
    return support_fits(signals, activations, every_image, concepts, used)
