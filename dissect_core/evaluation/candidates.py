"""Each neuron's best-correlated concepts on the training images of every fold, in one pass over the concepts."""

from __future__ import annotations

import torch
from torch import Tensor

from dissect_core.evaluation.signals import ConceptSignals

_BLOCK_BYTES = 256 << 20


def top_correlated_concepts(
    signals: ConceptSignals, activations: Tensor, folds: Tensor, n_folds: int, n_candidates: int
) -> Tensor:
    """Return [n_folds + 1, K, n_candidates] concept indices with the highest Pearson r to each neuron.

    Entry f < n_folds ranks by r on the images outside fold f (the training images of fold f); entry
    n_folds on all images. Per-fold statistics are the totals minus the fold's own, so the work is about two
    products of the activations with the signal matrix, whatever the number of folds; everything is centred
    on global means first so the subtraction loses no precision (the centring cancels exactly in r).
    """
    n_images, n_neurons = activations.shape
    n_candidates = min(n_candidates, signals.n_concepts)
    membership = torch.nn.functional.one_hot(folds, n_folds).double().T  # [F, N]
    counts = torch.cat([n_images - membership.sum(dim=1), torch.tensor([float(n_images)])])
    acts = activations.float() - activations.float().mean(dim=0)
    act_sums, act_sd = _training_moments(acts, membership, counts)
    fold_acts = [acts[folds == fold] for fold in range(n_folds)]
    fold_rows = [(folds == fold).nonzero().squeeze(1) for fold in range(n_folds)]
    best_values = torch.full((n_folds + 1, n_neurons, n_candidates), -torch.inf)
    best_index = torch.zeros((n_folds + 1, n_neurons, n_candidates), dtype=torch.long)
    step = max(256, _BLOCK_BYTES // (4 * max(1, n_images)))
    for start in range(0, signals.n_concepts, step):
        stop = min(start + step, signals.n_concepts)
        block = signals.block(start, stop)
        block = block - block.mean(dim=0)
        sig_sums, sig_sd = _training_moments(block, membership, counts)
        total_cross = acts.T @ block  # [K, B]
        for fold in range(n_folds + 1):
            cross = total_cross if fold == n_folds else total_cross - fold_acts[fold].T @ block[fold_rows[fold]]
            n = float(counts[fold])
            mean_product = torch.outer(act_sums[fold] / n, sig_sums[fold] / n).float()
            r = (cross / n - mean_product) / torch.outer(act_sd[fold], sig_sd[fold]).float()
            r = torch.nan_to_num(r, nan=-1.0)
            if start:
                r = torch.cat([best_values[fold], r], dim=1)
            values, positions = torch.topk(r, n_candidates, dim=1)
            best_values[fold] = values
            best_index[fold] = positions + start if not start else _merged_index(best_index[fold], positions, start)
    return best_index


def _merged_index(previous: Tensor, positions: Tensor, start: int) -> Tensor:
    """Map top-k positions over [previous candidates | new block] back to concept indices."""
    kept = previous.shape[1]
    from_block = positions - kept + start
    return torch.where(positions < kept, torch.gather(previous, 1, positions.clamp(max=kept - 1)), from_block)


def _training_moments(values: Tensor, membership: Tensor, counts: Tensor) -> tuple[Tensor, Tensor]:
    """Return float64 sums [F+1, D] and population sds [F+1, D] over each fold's training images, then all."""
    wide = values.double()
    total = wide.sum(dim=0, keepdim=True)
    total_squares = (wide**2).sum(dim=0, keepdim=True)
    sums = torch.cat([total - membership @ wide, total])
    squares = torch.cat([total_squares - membership @ (wide**2), total_squares])
    n = counts.unsqueeze(1)
    variance = (squares / n - (sums / n) ** 2).clamp(min=0)
    return sums, variance.sqrt().clamp(min=1e-12)
