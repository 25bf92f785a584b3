"""The out-of-fold evaluation as a stage over blocks of a layer's neurons.

The folds are computed once (`fold_of_images`, on the driver) and given to every block. Each neuron's
evaluation depends on its own column, except where soft-WPMI and WPMI choose a fold's label: their PMI needs
log p(m) over the whole layer on that fold's training images. So a block first returns each fold's totals'
partials (`fold_totals`, kept apart per fold so no fold's images enter its own ranking), the driver combines
them per fold, and the block then chooses its labels (`block_fold_labels`) and evaluates its neurons
(`dissect_core.evaluation.evaluate.evaluate_units`). The permutation null samples neurons across the layer: it
runs as one task on those neurons' columns (`null_columns`, `null_sd_of_columns`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

from dissect_core.evaluation.evaluate import FoldLabelFn, labels_by_scores, null_draws, null_sd_of
from dissect_core.evaluation.signals import ConceptSignals, restrict_rows
from dissect_core.similarity.cosine import CosineSource
from dissect_core.similarity.functions import get_similarity
from dissect_core.stages.scoring import (
    BlockTotals,
    block_scores,
    block_totals,
    needs_layer_normaliser,
    similarity_on,
)


def training_images(folds: Tensor, fold: int) -> Tensor:
    """Return the indices of fold `fold`'s training images (those of every other fold)."""
    return (folds != fold).nonzero().squeeze(1)


def fold_totals(
    similarity: str,
    params: Mapping[str, Any],
    cosine: CosineSource,
    activations: Tensor,
    folds: Tensor,
    n_folds: int,
    device: torch.device | None = None,
) -> list[BlockTotals]:
    """Return a block's soft-WPMI/WPMI totals on each fold's training images, one entry per fold (on `device`
    when it is a GPU, see `block_totals`)."""
    out = []
    for fold in range(n_folds):
        train = training_images(folds, fold)
        out.append(block_totals(similarity, params, restrict_rows(cosine, train), activations[train], device))
    return out


def block_fold_labels(
    similarity: str,
    params: Mapping[str, Any],
    cosine: CosineSource,
    activations: Tensor,
    totals: Sequence[BlockTotals] | None = None,
    fold_log_p: Sequence[np.ndarray] | None = None,
) -> FoldLabelFn:
    """Return how a block chooses each fold's labels: from its fold `totals` and the layer's log p(m) of that fold
    (`fold_log_p`) under soft-WPMI and WPMI, else by the similarity function on the block's training rows."""
    if not needs_layer_normaliser(similarity):
        function = get_similarity(similarity)
        return labels_by_scores(lambda subset, acts: function(subset, acts, **params), cosine, activations)
    if totals is None or fold_log_p is None:
        raise ValueError(f"{similarity} chooses a block's fold labels from its fold totals and the layer's log p(m)")

    def fold_labels(fold: int, train: Tensor) -> Tensor:
        del train  # the totals were computed on exactly this fold's training images
        scores = block_scores(similarity, params, cosine, activations, totals[fold], fold_log_p[fold])
        return scores.argmax(dim=1)

    return fold_labels


def null_columns(n_images: int, n_neurons: int) -> Tensor:
    """Return the sorted neurons (columns) whose activations the layer's permutation null shuffles."""
    return torch.unique(torch.cat([subset for _, subset in null_draws(n_images, n_neurons)]))


def null_sd_of_columns(
    similarity: str,
    params: Mapping[str, Any],
    cosine: CosineSource,
    signals: ConceptSignals,
    columns: Tensor,
    column_ids: Tensor,
    n_neurons: int,
    folds: Tensor,
    n_folds: int,
    device: torch.device | None = None,
) -> float:
    """Return the layer's permutation-null sd (`permutation_null_sd`) from only the columns it samples:
    `columns` [N, U] hold the activations of neurons `column_ids` (`null_columns`) of a layer of `n_neurons`
    (soft-WPMI's and WPMI's totals on `device` when it is a GPU, see `similarity_on`)."""
    score_fn = similarity_on(similarity, params, device)
    position = {int(neuron): index for index, neuron in enumerate(column_ids.tolist())}
    shuffled = [
        columns[order][:, torch.tensor([position[int(n)] for n in subset.tolist()], dtype=torch.long)]
        for order, subset in null_draws(columns.shape[0], n_neurons)
    ]
    return null_sd_of(score_fn, cosine, signals, shuffled, folds, n_folds)
