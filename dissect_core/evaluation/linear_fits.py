"""Linear simulations of neurons from concept signals: one concept (a label) or a sparse non-negative sum.

A fit predicts a neuron's activation on image i as intercept + sum_t weight_t * (s(i, c_t) - mean_t), with
the means taken over the images it was fitted on, so predicting held-out images uses nothing from them.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import Tensor

from dissect_core.evaluation.signals import ConceptSignals

_CHUNK_BYTES = 256 << 20
#: The chance, per neuron and step, that pure noise among the candidates passes the F-test for a new term.
_TERM_FALSE_POSITIVE_RATE = 0.01
#: Ridge added to each Gram diagonal, relative to it: keeps near-duplicate concepts (cat, cats) solvable.
_RELATIVE_RIDGE = 1e-8


@dataclass(frozen=True)
class LinearFits:
    """One linear simulation per neuron: concepts [K, T] (-1 where a term is unused), weights, means, intercept."""

    concepts: Tensor  # long [K, T]
    weights: Tensor  # float64 [K, T], >= 0 for used terms, 0 for unused
    signal_means: Tensor  # float64 [K, T]
    intercepts: Tensor  # float64 [K]

    def predict(self, signals: ConceptSignals, images: Tensor) -> Tensor:
        """Return the simulated activations [len(images), K] of every neuron on the given images."""
        used = self.concepts >= 0
        if not bool(used.any()):
            return self.intercepts.float().expand(len(images), -1).clone()
        unique, inverse = torch.unique(self.concepts.clamp(min=0), return_inverse=True)
        columns = signals.concept_rows(unique, images).double().T  # [n, U]
        per_term = columns[:, inverse]  # [n, K, T]
        terms = (per_term - self.signal_means.unsqueeze(0)) * (self.weights * used).unsqueeze(0)
        return (self.intercepts.unsqueeze(0) + terms.sum(dim=2)).float()


def single_concept_fits(signals: ConceptSignals, activations: Tensor, images: Tensor, concepts: Tensor) -> LinearFits:
    """Return each neuron's simulation from one concept, its slope fixed positive: the label's prediction.

    The prediction is mean(a) + sd(a) * (s - mean(s)) / sd(s) over `images`: a label says the neuron rises
    with its concept, so the slope is not fitted (a fitted slope could turn an anti-correlated label into a
    good prediction).
    """
    unique, inverse = torch.unique(concepts, return_inverse=True)
    columns = signals.concept_rows(unique, images).double()[inverse].T  # [n, K]
    acts = activations[images].double()
    signal_sd = columns.std(dim=0, unbiased=False).clamp(min=1e-12)
    weights = acts.std(dim=0, unbiased=False) / signal_sd
    return LinearFits(
        concepts=concepts.unsqueeze(1),
        weights=weights.unsqueeze(1),
        signal_means=columns.mean(dim=0).unsqueeze(1),
        intercepts=acts.mean(dim=0),
    )


def sparse_nonnegative_fits(
    signals: ConceptSignals,
    activations: Tensor,
    images: Tensor,
    candidates: Tensor,
    max_terms: int = 5,
    min_gain: float = 0.01,
) -> LinearFits:
    """Return each neuron's best sum of up to `max_terms` of its candidate concepts with weights >= 0.

    Greedy forward selection (the candidate most correlated with the residual joins, then a non-negative
    least-squares refit on the chosen set), fitted on `images` only. A term beyond the first joins only if
    it raises the share of variance explained by at least `min_gain` and passes a partial F-test at 1% with
    a Bonferroni correction over the candidates, so noise does not buy extra terms at any probe-set size.
    """
    n_neurons, n_candidates = candidates.shape
    n = len(images)
    chunk = max(1, _CHUNK_BYTES // (4 * max(1, n) * n_candidates))
    concepts = torch.full((n_neurons, max_terms), -1, dtype=torch.long)
    weights = torch.zeros((n_neurons, max_terms), dtype=torch.float64)
    means = torch.zeros((n_neurons, max_terms), dtype=torch.float64)
    acts = activations[images].double()
    for start in range(0, n_neurons, chunk):
        stop = min(start + chunk, n_neurons)
        block = candidates[start:stop]
        x = signals.concept_rows(block.reshape(-1), images).view(stop - start, n_candidates, n)  # [k, M, n]
        x_means = x.mean(dim=2)  # [k, M]
        x.sub_(x_means.unsqueeze(2))
        y = acts[:, start:stop].T  # [k, n]
        yc = (y - y.mean(dim=1, keepdim=True)).float()
        gram = torch.bmm(x, x.transpose(1, 2)).double()
        cross = torch.bmm(x, yc.unsqueeze(2)).squeeze(2).double()
        total = (yc.double() ** 2).sum(dim=1)
        x_means = x_means.double()
        solution = _greedy_nonnegative(gram, cross, total, max_terms, _gain_rule(min_gain, n, n_candidates))
        order = torch.argsort(solution * gram.diagonal(dim1=1, dim2=2).sqrt(), dim=1, descending=True)[:, :max_terms]
        chosen = torch.gather(solution, 1, order)
        used = chosen > 0
        concepts[start:stop] = torch.where(used, torch.gather(block, 1, order), -1)
        weights[start:stop] = torch.where(used, chosen, 0.0)
        means[start:stop] = torch.where(used, torch.gather(x_means, 1, order), 0.0)
    return LinearFits(concepts=concepts, weights=weights, signal_means=means, intercepts=acts.mean(dim=0))


def _gain_rule(min_gain: float, n_images: int, n_candidates: int) -> Callable[[Tensor, int], Tensor]:
    """Return the least R² gain a term must add, given the R² with it and the number of terms."""
    tail = _TERM_FALSE_POSITIVE_RATE / max(1, n_candidates)
    critical = (math.sqrt(2.0) * torch.erfinv(torch.tensor(1.0 - tail, dtype=torch.float64))) ** 2  # chi2(1)

    def least_gain(explained: Tensor, n_terms: int) -> Tensor:
        residual_df = max(1, n_images - n_terms - 1)
        return torch.clamp(critical * (1 - explained) / residual_df, min=min_gain)

    return least_gain


def _greedy_nonnegative(
    gram: Tensor, cross: Tensor, total: Tensor, max_terms: int, least_gain: Callable[[Tensor, int], Tensor]
) -> Tensor:
    """Return weights [k, M] (0 off the chosen set) of greedy non-negative least squares on Gram matrices."""
    k, m = cross.shape
    scale = gram.diagonal(dim1=1, dim2=2).clamp(min=1e-30)
    total = total.clamp(min=1e-30)
    selected = torch.zeros((k, m), dtype=torch.bool)
    banned = torch.zeros((k, m), dtype=torch.bool)
    weights = torch.zeros((k, m), dtype=torch.float64)
    explained = torch.zeros(k, dtype=torch.float64)
    active = torch.ones(k, dtype=torch.bool)
    rows = torch.arange(k)
    for step in range(max_terms):
        residual = cross - (gram @ weights.unsqueeze(2)).squeeze(2)
        score = residual / scale.sqrt()
        score = score.masked_fill(selected | banned | (residual <= 0), -torch.inf)
        best, choice = score.max(dim=1)
        can_grow = active & torch.isfinite(best)
        grown = selected.clone()
        grown[rows[can_grow], choice[can_grow]] = True
        grown_weights = nonnegative_least_squares(gram, cross, grown)
        grown_explained = (grown_weights * cross).sum(dim=1) / total
        gain = grown_explained - explained
        gain_ok = gain >= least_gain(grown_explained, step + 1) if step else torch.ones(k, dtype=torch.bool)
        accept = can_grow & gain_ok
        banned |= grown & ~(grown_weights > 0) & accept.unsqueeze(1)
        selected = torch.where(accept.unsqueeze(1), grown_weights > 0, selected)
        weights = torch.where(accept.unsqueeze(1), grown_weights, weights)
        explained = torch.where(accept, grown_explained, explained)
        active = accept
        if not bool(active.any()):
            break
    return weights


def nonnegative_least_squares(gram: Tensor, cross: Tensor, support: Tensor) -> Tensor:
    """Return least squares on each row's support, dropping terms whose weight turns non-positive, until none do."""
    support = support.clone()
    k, m = cross.shape
    identity = torch.eye(m, dtype=torch.float64).expand(k, m, m)
    ridge = _RELATIVE_RIDGE * gram.diagonal(dim1=1, dim2=2).clamp(min=1e-30)
    weights = torch.zeros_like(cross)
    for _ in range(m):
        mask = support.double()
        system = gram * mask.unsqueeze(2) * mask.unsqueeze(1) + identity * (1 - mask).unsqueeze(2)
        system = system + torch.diag_embed(ridge * mask)
        weights = torch.linalg.solve(system, (cross * mask).unsqueeze(2)).squeeze(2) * mask
        negative = support & (weights <= 0)
        if not bool(negative.any()):
            break
        support &= ~negative
    return weights
